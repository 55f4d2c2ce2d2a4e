-- The schema and data of the last release before the skills owned their migrations (main at babfc38),
-- made by replaying a short community morning; tests/test_upgrade_in_place.py upgrades it in place.
PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE alembic_version (
	version_num VARCHAR(32) NOT NULL, 
	CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
INSERT INTO alembic_version VALUES('0300_tiers');
INSERT INTO alembic_version VALUES('0200_gentle_orders');
INSERT INTO alembic_version VALUES('0007');
INSERT INTO alembic_version VALUES('0006');
INSERT INTO alembic_version VALUES('0005');
INSERT INTO alembic_version VALUES('0003');
CREATE TABLE activity (
	id INTEGER NOT NULL, 
	at DATETIME NOT NULL, 
	room_id VARCHAR(128), 
	member_id VARCHAR(128), 
	kind VARCHAR(32) NOT NULL, 
	skill VARCHAR(64), 
	detail JSON, 
	PRIMARY KEY (id)
);
INSERT INTO activity VALUES(1,'2026-11-23 01:00:00.000000',NULL,NULL,'tier_pass','tiers','{"members":0,"changed":0,"days_rolled":1,"ms":66,"counts":{}}');
INSERT INTO activity VALUES(2,'2026-11-23 01:00:00.000000',NULL,NULL,'job','tiers','{"job":"tiers.first","outcome":"ok","due":"2026-11-23T01:00:00+00:00"}');
INSERT INTO activity VALUES(3,'2026-11-23 01:00:00.000000','g1','u1','join',NULL,'{"inviter":"admin1"}');
INSERT INTO activity VALUES(4,'2026-11-23 01:00:00.000000','g1','u2','join',NULL,'{"inviter":"admin1"}');
INSERT INTO activity VALUES(5,'2026-11-23 01:01:00.000000','g1',NULL,'sent','welcome','{"text":"@小李 @小王 欢迎新朋友加入「会员福利群」🎉\n群规：友善交流，不发广告和链接，有问题随时 @小助手 或管理员。\n发送「签到」每天领积分，发送 /help 看看我还能做什么。\n先来做个简单的自我介绍吧～","priority":"reply","mentions":["u1","u2"]}');
INSERT INTO activity VALUES(6,'2026-11-23 01:05:00.000000','g1','u1','checkin','checkin','{"date":"2026-11-23","streak":1,"points":5,"balance":5}');
INSERT INTO activity VALUES(7,'2026-11-23 01:05:00.000000','g1','u1','command','checkin','{"command":"checkin","args":"","outcome":"ok"}');
INSERT INTO activity VALUES(8,'2026-11-23 01:05:00.000000','g1','u1','message',NULL,'{"text":"签到","len":2,"to_bot":true}');
INSERT INTO activity VALUES(9,'2026-11-23 01:05:30.000000','g1',NULL,'sent','checkin','{"text":"签到成功 ✅\n小李 +5（连续 1 天），共 5 分","priority":"reply"}');
INSERT INTO activity VALUES(10,'2026-11-23 01:06:00.000000','g1','u2','checkin','checkin','{"date":"2026-11-23","streak":1,"points":5,"balance":5}');
INSERT INTO activity VALUES(11,'2026-11-23 01:06:00.000000','g1','u2','command','checkin','{"command":"checkin","args":"","outcome":"ok"}');
INSERT INTO activity VALUES(12,'2026-11-23 01:06:00.000000','g1','u2','message',NULL,'{"text":"签到","len":2,"to_bot":true}');
INSERT INTO activity VALUES(13,'2026-11-23 01:06:30.000000','g1',NULL,'sent','checkin','{"text":"签到成功 ✅\n小王 +5（连续 1 天），共 5 分","priority":"reply"}');
INSERT INTO activity VALUES(14,'2026-11-23 02:00:00.000000','g1','admin1','command','lottery','{"command":"lottery start","args":"帆布袋","outcome":"ok"}');
INSERT INTO activity VALUES(15,'2026-11-23 02:00:00.000000','g1','admin1','message',NULL,'{"text":"/lottery start 帆布袋 winners=1 duration=30m keyword=抽奖","len":52,"to_bot":true}');
INSERT INTO activity VALUES(16,'2026-11-23 02:00:00.000000','g1',NULL,'sent','lottery','{"text":"🎁 抽奖 #1 开始啦！\n奖品：帆布袋（1 名）\n参与方式：在群里发送「抽奖」，每人一次，管理员不参与。\n开奖时间：11月23日 10:30\n公平承诺：本次随机种子的 SHA-256 是 df086b6639e9938d362f46c47dc262069ad855ca8c347ad67f5a4cb8cb4b4eaa\n开奖时公布种子，大家可以用 /lottery verify 1 验证结果。","priority":"reply"}');
INSERT INTO activity VALUES(17,'2026-11-23 02:01:00.000000','g1','u1','message',NULL,'{"text":"抽奖","len":2,"to_bot":true}');
INSERT INTO activity VALUES(18,'2026-11-23 02:01:30.000000','g1',NULL,'sent','lottery','{"text":"@小李 参与成功🎉 目前共 1 人参与，祝好运！","priority":"reply","mentions":["u1"]}');
INSERT INTO activity VALUES(19,'2026-11-23 02:02:00.000000','g1','u1','order','orders','{"order_id":"A1","status":"paid","amount":9.9,"group_buy":null}');
INSERT INTO activity VALUES(20,'2026-11-23 02:03:00.000000',NULL,'u2','faq_answer','faq','{"q":"怎么退货","entry":"return-policy","score":0.9745,"mode":"answer"}');
INSERT INTO activity VALUES(21,'2026-11-23 02:03:00.000000',NULL,'u2','message',NULL,'{"text":"怎么退货","len":4,"to_bot":true}');
INSERT INTO activity VALUES(22,'2026-11-23 02:03:00.000000',NULL,'u2','sent','faq','{"text":"支持 7 天无理由退货：商品未拆封、不影响二次销售即可。\n在小程序「我的订单」里点「申请售后」→「退货退款」，审核通过后按页面上的地址寄回。\n咖啡豆、挂耳拆封后属于食品，不支持无理由退货（质量问题除外）。","priority":"reply"}');
INSERT INTO activity VALUES(23,'2026-11-23 02:04:00.000000',NULL,'u2','opt_out','optout','{"opted_out":true,"changed":true}');
INSERT INTO activity VALUES(24,'2026-11-23 02:04:00.000000',NULL,'u2','command','optout','{"command":"unsubscribe","args":"","outcome":"ok"}');
INSERT INTO activity VALUES(25,'2026-11-23 02:04:00.000000',NULL,'u2','message',NULL,'{"text":"/退订","len":3,"to_bot":true}');
INSERT INTO activity VALUES(26,'2026-11-23 02:04:00.000000',NULL,'u2','sent','optout','{"text":"已为你退订：之后不会再私信你通知和活动消息（你的订单提醒除外）。想恢复请发送 /订阅。","priority":"reply"}');
INSERT INTO activity VALUES(27,'2026-11-23 02:30:00.000000',NULL,NULL,'job','lottery','{"job":"lottery:1:draw","outcome":"ok","due":"2026-11-23T02:30:00+00:00"}');
INSERT INTO activity VALUES(28,'2026-11-23 02:30:00.000000','g1',NULL,'sent','lottery','{"text":"@小李 恭喜中奖🎉 抽奖 #1「帆布袋」开奖啦！共 1 人参与，抽出 1 名。参与人数不足，全部中奖！\n中奖名单：小李\n随机种子：b01608c4e4cd0914a05bcfa808f56cbc755282a3324865aa66e00560770313fd\n验证方法：SHA-256(种子) 应等于开始时公布的承诺 df086b6639e9938d362f46c47dc262069ad855ca8c347ad67f5a4cb8cb4b4eaa；把参与者 id 排序，第 i 位（从 0 数）取 SHA-256(种子:i) 对剩余人数取余选出。发送 /lottery verify 1 即可复算。","priority":"transactional","proactive":"transactional","mentions":["u1"]}');
INSERT INTO activity VALUES(29,'2026-11-23 03:00:00.000000','g1','admin1','command','lottery','{"command":"lottery start","args":"保温杯","outcome":"ok"}');
INSERT INTO activity VALUES(30,'2026-11-23 03:00:00.000000','g1','admin1','message',NULL,'{"text":"/lottery start 保温杯 winners=1 duration=1d keyword=参加","len":51,"to_bot":true}');
INSERT INTO activity VALUES(31,'2026-11-23 03:00:00.000000','g1',NULL,'sent','lottery','{"text":"🎁 抽奖 #2 开始啦！\n奖品：保温杯（1 名）\n参与方式：在群里发送「参加」，每人一次，管理员不参与。\n开奖时间：11月24日 11:00\n公平承诺：本次随机种子的 SHA-256 是 c1dbafab4dfd29376fa52e738db74c0b977922f6a6b490b7ceae13eee17a13c6\n开奖时公布种子，大家可以用 /lottery verify 2 验证结果。","priority":"reply"}');
CREATE TABLE member_names (
	member_id VARCHAR(128) NOT NULL, 
	name VARCHAR(256) NOT NULL, 
	first_seen DATETIME NOT NULL, 
	PRIMARY KEY (member_id, name)
)
 WITHOUT ROWID

;
INSERT INTO member_names VALUES('admin1','管理','2026-11-23 02:00:00.000000');
INSERT INTO member_names VALUES('u1','小李','2026-11-23 01:00:00.000000');
INSERT INTO member_names VALUES('u2','小王','2026-11-23 01:00:00.000000');
CREATE TABLE members (
	id VARCHAR(128) NOT NULL, 
	name VARCHAR(256) NOT NULL, 
	first_seen DATETIME NOT NULL, 
	last_seen DATETIME NOT NULL, 
	PRIMARY KEY (id)
)
 WITHOUT ROWID

;
INSERT INTO members VALUES('admin1','管理','2026-11-23 02:00:00.000000','2026-11-23 03:00:00.000000');
INSERT INTO members VALUES('u1','小李','2026-11-23 01:00:00.000000','2026-11-23 02:01:00.000000');
INSERT INTO members VALUES('u2','小王','2026-11-23 01:00:00.000000','2026-11-23 02:04:00.000000');
CREATE TABLE proactive_counts (
	day VARCHAR(10) NOT NULL, 
	scope VARCHAR(140) NOT NULL, 
	kind VARCHAR(16) NOT NULL, 
	count INTEGER NOT NULL, 
	PRIMARY KEY (day, scope, kind)
)
 WITHOUT ROWID

;
CREATE TABLE room_members (
	room_id VARCHAR(128) NOT NULL, 
	member_id VARCHAR(128) NOT NULL, 
	first_seen DATETIME NOT NULL, 
	last_seen DATETIME NOT NULL, 
	joined_at DATETIME, 
	left_at DATETIME, 
	inviter_id VARCHAR(128), 
	active BOOLEAN NOT NULL, 
	PRIMARY KEY (room_id, member_id)
)
 WITHOUT ROWID

;
INSERT INTO room_members VALUES('g1','admin1','2026-11-23 02:00:00.000000','2026-11-23 03:00:00.000000',NULL,NULL,NULL,1);
INSERT INTO room_members VALUES('g1','u1','2026-11-23 01:00:00.000000','2026-11-23 02:01:00.000000','2026-11-23 01:00:00.000000',NULL,'admin1',1);
INSERT INTO room_members VALUES('g1','u2','2026-11-23 01:00:00.000000','2026-11-23 01:06:00.000000','2026-11-23 01:00:00.000000',NULL,'admin1',1);
CREATE TABLE rooms (
	id VARCHAR(128) NOT NULL, 
	topic VARCHAR(256) NOT NULL, 
	first_seen DATETIME NOT NULL, 
	last_seen DATETIME NOT NULL, 
	PRIMARY KEY (id)
)
 WITHOUT ROWID

;
INSERT INTO rooms VALUES('g1','会员福利群','2026-11-23 01:00:00.000000','2026-11-23 03:00:00.000000');
CREATE TABLE scheduled_jobs (
	id INTEGER NOT NULL, 
	"key" VARCHAR(200) NOT NULL, 
	handler VARCHAR(100) NOT NULL, 
	payload JSON, 
	schedule VARCHAR(16) NOT NULL, 
	spec VARCHAR(100) NOT NULL, 
	next_run_at DATETIME, 
	last_run_at DATETIME, 
	status VARCHAR(16) NOT NULL, 
	misfire_grace_s INTEGER NOT NULL, 
	run_count INTEGER NOT NULL, 
	attempts INTEGER NOT NULL, 
	last_error TEXT, 
	created_at DATETIME NOT NULL, room_id VARCHAR(128), 
	PRIMARY KEY (id), 
	UNIQUE ("key")
);
INSERT INTO scheduled_jobs VALUES(1,'tiers.nightly','tiers.recompute','{}','daily','03:30','2026-11-23 19:30:00.000000',NULL,'active',43200,0,0,NULL,'2026-11-23 01:00:00.000000',NULL);
INSERT INTO scheduled_jobs VALUES(2,'tiers.first','tiers.recompute','{}','once','',NULL,'2026-11-23 01:00:00.000000','done',3600,1,0,NULL,'2026-11-23 01:00:00.000000',NULL);
INSERT INTO scheduled_jobs VALUES(3,'lottery:1:draw','lottery.draw','{"lottery_id": 1}','once','',NULL,'2026-11-23 02:30:00.000000','done',604800,1,0,NULL,'2026-11-23 02:00:00.000000','g1');
INSERT INTO scheduled_jobs VALUES(4,'lottery:2:draw','lottery.draw','{"lottery_id": 2}','once','','2026-11-24 03:00:00.000000',NULL,'active',604800,0,0,NULL,'2026-11-23 03:00:00.000000','g1');
CREATE TABLE member_tiers (
	member_id VARCHAR(128) NOT NULL, 
	tier VARCHAR(16) NOT NULL, 
	since DATETIME NOT NULL, 
	joined_day VARCHAR(10), 
	last_active_day VARCHAR(10), 
	active_days_7 INTEGER NOT NULL, 
	active_days_window INTEGER NOT NULL, 
	messages_window INTEGER NOT NULL, 
	checkins_window INTEGER NOT NULL, 
	orders_window INTEGER NOT NULL, 
	amount_window FLOAT NOT NULL, 
	points INTEGER NOT NULL, 
	r INTEGER NOT NULL, 
	f INTEGER NOT NULL, 
	m INTEGER NOT NULL, 
	PRIMARY KEY (member_id)
)
 WITHOUT ROWID

;
CREATE TABLE tier_changes (
	id INTEGER NOT NULL, 
	member_id VARCHAR(128) NOT NULL, 
	from_tier VARCHAR(16), 
	to_tier VARCHAR(16) NOT NULL, 
	at DATETIME NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE tier_daily (
	day VARCHAR(10) NOT NULL, 
	tier VARCHAR(16) NOT NULL, 
	members INTEGER NOT NULL, 
	PRIMARY KEY (day, tier)
)
 WITHOUT ROWID

;
CREATE TABLE member_days (
	day VARCHAR(10) NOT NULL, 
	member_id VARCHAR(128) NOT NULL, 
	actions INTEGER NOT NULL, 
	messages INTEGER NOT NULL, 
	checkins INTEGER NOT NULL, 
	PRIMARY KEY (day, member_id)
)
 WITHOUT ROWID

;
CREATE TABLE member_windows (
	member_id VARCHAR(128) NOT NULL, 
	days_window INTEGER NOT NULL, 
	days_recent INTEGER NOT NULL, 
	messages_window INTEGER NOT NULL, 
	checkins_window INTEGER NOT NULL, 
	last_active_day VARCHAR(10), 
	PRIMARY KEY (member_id)
)
 WITHOUT ROWID

;
CREATE TABLE window_days (
	day VARCHAR(10) NOT NULL, 
	in_window INTEGER NOT NULL, 
	in_recent INTEGER NOT NULL, 
	PRIMARY KEY (day)
);
INSERT INTO window_days VALUES('2026-08-26',1,0);
INSERT INTO window_days VALUES('2026-08-27',1,0);
INSERT INTO window_days VALUES('2026-08-28',1,0);
INSERT INTO window_days VALUES('2026-08-29',1,0);
INSERT INTO window_days VALUES('2026-08-30',1,0);
INSERT INTO window_days VALUES('2026-08-31',1,0);
INSERT INTO window_days VALUES('2026-09-01',1,0);
INSERT INTO window_days VALUES('2026-09-02',1,0);
INSERT INTO window_days VALUES('2026-09-03',1,0);
INSERT INTO window_days VALUES('2026-09-04',1,0);
INSERT INTO window_days VALUES('2026-09-05',1,0);
INSERT INTO window_days VALUES('2026-09-06',1,0);
INSERT INTO window_days VALUES('2026-09-07',1,0);
INSERT INTO window_days VALUES('2026-09-08',1,0);
INSERT INTO window_days VALUES('2026-09-09',1,0);
INSERT INTO window_days VALUES('2026-09-10',1,0);
INSERT INTO window_days VALUES('2026-09-11',1,0);
INSERT INTO window_days VALUES('2026-09-12',1,0);
INSERT INTO window_days VALUES('2026-09-13',1,0);
INSERT INTO window_days VALUES('2026-09-14',1,0);
INSERT INTO window_days VALUES('2026-09-15',1,0);
INSERT INTO window_days VALUES('2026-09-16',1,0);
INSERT INTO window_days VALUES('2026-09-17',1,0);
INSERT INTO window_days VALUES('2026-09-18',1,0);
INSERT INTO window_days VALUES('2026-09-19',1,0);
INSERT INTO window_days VALUES('2026-09-20',1,0);
INSERT INTO window_days VALUES('2026-09-21',1,0);
INSERT INTO window_days VALUES('2026-09-22',1,0);
INSERT INTO window_days VALUES('2026-09-23',1,0);
INSERT INTO window_days VALUES('2026-09-24',1,0);
INSERT INTO window_days VALUES('2026-09-25',1,0);
INSERT INTO window_days VALUES('2026-09-26',1,0);
INSERT INTO window_days VALUES('2026-09-27',1,0);
INSERT INTO window_days VALUES('2026-09-28',1,0);
INSERT INTO window_days VALUES('2026-09-29',1,0);
INSERT INTO window_days VALUES('2026-09-30',1,0);
INSERT INTO window_days VALUES('2026-10-01',1,0);
INSERT INTO window_days VALUES('2026-10-02',1,0);
INSERT INTO window_days VALUES('2026-10-03',1,0);
INSERT INTO window_days VALUES('2026-10-04',1,0);
INSERT INTO window_days VALUES('2026-10-05',1,0);
INSERT INTO window_days VALUES('2026-10-06',1,0);
INSERT INTO window_days VALUES('2026-10-07',1,0);
INSERT INTO window_days VALUES('2026-10-08',1,0);
INSERT INTO window_days VALUES('2026-10-09',1,0);
INSERT INTO window_days VALUES('2026-10-10',1,0);
INSERT INTO window_days VALUES('2026-10-11',1,0);
INSERT INTO window_days VALUES('2026-10-12',1,0);
INSERT INTO window_days VALUES('2026-10-13',1,0);
INSERT INTO window_days VALUES('2026-10-14',1,0);
INSERT INTO window_days VALUES('2026-10-15',1,0);
INSERT INTO window_days VALUES('2026-10-16',1,0);
INSERT INTO window_days VALUES('2026-10-17',1,0);
INSERT INTO window_days VALUES('2026-10-18',1,0);
INSERT INTO window_days VALUES('2026-10-19',1,0);
INSERT INTO window_days VALUES('2026-10-20',1,0);
INSERT INTO window_days VALUES('2026-10-21',1,0);
INSERT INTO window_days VALUES('2026-10-22',1,0);
INSERT INTO window_days VALUES('2026-10-23',1,0);
INSERT INTO window_days VALUES('2026-10-24',1,0);
INSERT INTO window_days VALUES('2026-10-25',1,0);
INSERT INTO window_days VALUES('2026-10-26',1,0);
INSERT INTO window_days VALUES('2026-10-27',1,0);
INSERT INTO window_days VALUES('2026-10-28',1,0);
INSERT INTO window_days VALUES('2026-10-29',1,0);
INSERT INTO window_days VALUES('2026-10-30',1,0);
INSERT INTO window_days VALUES('2026-10-31',1,0);
INSERT INTO window_days VALUES('2026-11-01',1,0);
INSERT INTO window_days VALUES('2026-11-02',1,0);
INSERT INTO window_days VALUES('2026-11-03',1,0);
INSERT INTO window_days VALUES('2026-11-04',1,0);
INSERT INTO window_days VALUES('2026-11-05',1,0);
INSERT INTO window_days VALUES('2026-11-06',1,0);
INSERT INTO window_days VALUES('2026-11-07',1,0);
INSERT INTO window_days VALUES('2026-11-08',1,0);
INSERT INTO window_days VALUES('2026-11-09',1,0);
INSERT INTO window_days VALUES('2026-11-10',1,0);
INSERT INTO window_days VALUES('2026-11-11',1,0);
INSERT INTO window_days VALUES('2026-11-12',1,0);
INSERT INTO window_days VALUES('2026-11-13',1,0);
INSERT INTO window_days VALUES('2026-11-14',1,0);
INSERT INTO window_days VALUES('2026-11-15',1,0);
INSERT INTO window_days VALUES('2026-11-16',1,0);
INSERT INTO window_days VALUES('2026-11-17',1,1);
INSERT INTO window_days VALUES('2026-11-18',1,1);
INSERT INTO window_days VALUES('2026-11-19',1,1);
INSERT INTO window_days VALUES('2026-11-20',1,1);
INSERT INTO window_days VALUES('2026-11-21',1,1);
INSERT INTO window_days VALUES('2026-11-22',1,1);
INSERT INTO window_days VALUES('2026-11-23',1,1);
CREATE TABLE room_days (
	day VARCHAR(10) NOT NULL, 
	room_id VARCHAR(128) NOT NULL, 
	active_members INTEGER NOT NULL, 
	messages INTEGER NOT NULL, 
	checkins INTEGER NOT NULL, 
	faq_answered INTEGER NOT NULL, 
	faq_missed INTEGER NOT NULL, 
	joins INTEGER NOT NULL, 
	leaves INTEGER NOT NULL, 
	PRIMARY KEY (day, room_id)
)
 WITHOUT ROWID

;
INSERT INTO room_days VALUES('2026-11-23','*',0,0,0,0,0,0,0);
CREATE TABLE tier_orders (
	order_id VARCHAR(128) NOT NULL, 
	member_id VARCHAR(128) NOT NULL, 
	room_id VARCHAR(128), 
	status VARCHAR(32) NOT NULL, 
	amount FLOAT NOT NULL, 
	group_buy VARCHAR(128), 
	placed_at DATETIME, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (order_id)
)
 WITHOUT ROWID

;
CREATE TABLE tier_runs (
	id INTEGER NOT NULL, 
	at DATETIME NOT NULL, 
	day VARCHAR(10) NOT NULL, 
	rolled_through VARCHAR(10), 
	activity_id BIGINT NOT NULL, 
	members INTEGER NOT NULL, 
	changed INTEGER NOT NULL, 
	duration_ms INTEGER NOT NULL, 
	PRIMARY KEY (id)
);
INSERT INTO tier_runs VALUES(1,'2026-11-23 01:00:00.000000','2026-11-23','2026-11-22',0,0,0,66);
CREATE TABLE group_buys (
	id VARCHAR(64) NOT NULL, 
	cutoff_at DATETIME, 
	PRIMARY KEY (id)
)
 WITHOUT ROWID

;
CREATE TABLE member_bindings (
	external_id VARCHAR(128) NOT NULL, 
	wechat_id VARCHAR(128) NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (external_id)
)
 WITHOUT ROWID

;
CREATE TABLE member_optouts (
	member_id VARCHAR(128) NOT NULL, 
	opted_out_at DATETIME NOT NULL, 
	PRIMARY KEY (member_id)
)
 WITHOUT ROWID

;
INSERT INTO member_optouts VALUES('u2','2026-11-23 02:04:00.000000');
CREATE TABLE order_events (
	id INTEGER NOT NULL, 
	order_id VARCHAR(64) NOT NULL, 
	status VARCHAR(20) NOT NULL, 
	source VARCHAR(16) NOT NULL, 
	received_at DATETIME NOT NULL, 
	applied BOOLEAN NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_order_events_order_status UNIQUE (order_id, status)
);
INSERT INTO order_events VALUES(1,'A1','paid','replay','2026-11-23 02:02:00.000000',1);
CREATE TABLE orders (
	id VARCHAR(64) NOT NULL, 
	member_id VARCHAR(128), 
	external_member_id VARCHAR(128), 
	items JSON, 
	amount_cents BIGINT NOT NULL, 
	status VARCHAR(20) NOT NULL, 
	pay_by DATETIME, 
	pickup_by DATETIME, 
	group_buy_id VARCHAR(64), 
	room_id VARCHAR(128), 
	tracking TEXT, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (id)
);
INSERT INTO orders VALUES('A1','u1',NULL,'["\u82f9\u679c"]',990,'paid',NULL,NULL,NULL,'g1',NULL,'2026-11-23 02:02:00.000000','2026-11-23 02:02:00.000000');
CREATE TABLE proactive_last (
	scope VARCHAR(140) NOT NULL, 
	at DATETIME NOT NULL, 
	PRIMARY KEY (scope)
)
 WITHOUT ROWID

;
INSERT INTO proactive_last VALUES('room:g1','2026-11-23 02:30:00.000000');
CREATE TABLE reminders_sent (
	id INTEGER NOT NULL, 
	ref VARCHAR(64) NOT NULL, 
	kind VARCHAR(20) NOT NULL, 
	target VARCHAR(140) NOT NULL, 
	decided_at DATETIME NOT NULL, 
	detail JSON, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_reminders_sent UNIQUE (ref, kind, target)
);
CREATE TABLE points_balances (
	member_id VARCHAR(128) NOT NULL, 
	balance INTEGER NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (member_id)
)
 WITHOUT ROWID

;
INSERT INTO points_balances VALUES('u1',5,'2026-11-23 01:05:00.000000');
INSERT INTO points_balances VALUES('u2',5,'2026-11-23 01:06:00.000000');
CREATE TABLE points_ledger (
	id INTEGER NOT NULL, 
	member_id VARCHAR(128) NOT NULL, 
	delta INTEGER NOT NULL, 
	reason VARCHAR(200) NOT NULL, 
	source VARCHAR(32) NOT NULL, 
	ref_id VARCHAR(200), 
	actor_id VARCHAR(128), 
	at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_points_ledger_source_ref UNIQUE (source, ref_id)
);
INSERT INTO points_ledger VALUES(1,'u1',5,'签到（连续 1 天）','checkin','u1:2026-11-23',NULL,'2026-11-23 01:05:00.000000');
INSERT INTO points_ledger VALUES(2,'u2',5,'签到（连续 1 天）','checkin','u2:2026-11-23',NULL,'2026-11-23 01:06:00.000000');
CREATE TABLE account_rooms (
	account_id VARCHAR(128) NOT NULL, 
	room_id VARCHAR(128) NOT NULL, 
	last_seen DATETIME NOT NULL, 
	PRIMARY KEY (account_id, room_id)
)
 WITHOUT ROWID

;
INSERT INTO account_rooms VALUES('bot','g1','2026-11-23 01:00:00.000000');
CREATE TABLE lotteries (
	id INTEGER NOT NULL, 
	room_id VARCHAR(128) NOT NULL, 
	prize VARCHAR(200) NOT NULL, 
	winners INTEGER NOT NULL, 
	keyword VARCHAR(64) NOT NULL, 
	cost INTEGER NOT NULL, 
	commitment VARCHAR(64) NOT NULL, 
	seed VARCHAR(64) NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	created_by VARCHAR(128) NOT NULL, 
	created_at DATETIME NOT NULL, 
	deadline DATETIME NOT NULL, 
	drawn_at DATETIME, 
	winner_ids JSON, min_tier VARCHAR(16), 
	PRIMARY KEY (id)
);
INSERT INTO lotteries VALUES(1,'g1','帆布袋',1,'抽奖',0,'df086b6639e9938d362f46c47dc262069ad855ca8c347ad67f5a4cb8cb4b4eaa','b01608c4e4cd0914a05bcfa808f56cbc755282a3324865aa66e00560770313fd','drawn','admin1','2026-11-23 02:00:00.000000','2026-11-23 02:30:00.000000','2026-11-23 02:30:00.000000','["u1"]',NULL);
INSERT INTO lotteries VALUES(2,'g1','保温杯',1,'参加',0,'c1dbafab4dfd29376fa52e738db74c0b977922f6a6b490b7ceae13eee17a13c6','48a7f182812433b288d1e102c7f2d1c4e60171d064be9c984366578e0853e9ec','open','admin1','2026-11-23 03:00:00.000000','2026-11-24 03:00:00.000000',NULL,NULL,NULL);
CREATE TABLE lottery_entries (
	id INTEGER NOT NULL, 
	lottery_id INTEGER NOT NULL, 
	member_id VARCHAR(128) NOT NULL, 
	name VARCHAR(128) NOT NULL, 
	at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(lottery_id) REFERENCES lotteries (id), 
	CONSTRAINT uq_lottery_entries_member UNIQUE (lottery_id, member_id)
);
INSERT INTO lottery_entries VALUES(1,1,'u1','小李','2026-11-23 02:01:00.000000');
CREATE TABLE welcomes (
	room_id VARCHAR(128) NOT NULL, 
	member_id VARCHAR(128) NOT NULL, 
	welcomed_at DATETIME NOT NULL, 
	PRIMARY KEY (room_id, member_id)
)
 WITHOUT ROWID

;
INSERT INTO welcomes VALUES('g1','u1','2026-11-23 01:00:00.000000');
INSERT INTO welcomes VALUES('g1','u2','2026-11-23 01:00:00.000000');
CREATE TABLE checkins (
	id INTEGER NOT NULL, 
	member_id VARCHAR(128) NOT NULL, 
	local_date VARCHAR(10) NOT NULL, 
	streak INTEGER NOT NULL, 
	points INTEGER NOT NULL, 
	room_id VARCHAR(128), 
	at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_checkins_member_date UNIQUE (member_id, local_date)
);
INSERT INTO checkins VALUES(1,'u1','2026-11-23',1,5,'g1','2026-11-23 01:05:00.000000');
INSERT INTO checkins VALUES(2,'u2','2026-11-23',1,5,'g1','2026-11-23 01:06:00.000000');
CREATE TABLE redemptions (
	id INTEGER NOT NULL, 
	member_id VARCHAR(128) NOT NULL, 
	member_name VARCHAR(256) NOT NULL, 
	room_id VARCHAR(128), 
	item VARCHAR(64) NOT NULL, 
	cost INTEGER NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	at DATETIME NOT NULL, 
	fulfilled_at DATETIME, 
	fulfilled_by VARCHAR(128), 
	PRIMARY KEY (id)
);
CREATE TABLE reward_stock (
	item VARCHAR(64) NOT NULL, 
	stock INTEGER NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (item)
)
 WITHOUT ROWID

;
CREATE INDEX ix_activity_at ON activity (at);
CREATE INDEX ix_members_last_seen ON members (last_seen);
CREATE INDEX ix_room_members_member_id ON room_members (member_id);
CREATE INDEX ix_scheduled_jobs_due ON scheduled_jobs (status, next_run_at);
CREATE INDEX ix_member_tiers_tier ON member_tiers (tier);
CREATE INDEX ix_tier_changes_member_at ON tier_changes (member_id, at);
CREATE INDEX ix_tier_changes_at ON tier_changes (at);
CREATE INDEX ix_tier_orders_member ON tier_orders (member_id);
CREATE INDEX ix_member_bindings_wechat_id ON member_bindings (wechat_id);
CREATE INDEX ix_orders_external_member_id ON orders (external_member_id);
CREATE INDEX ix_orders_group_buy_id ON orders (group_buy_id);
CREATE INDEX ix_orders_member_id ON orders (member_id);
CREATE INDEX ix_points_balances_balance ON points_balances (balance);
CREATE INDEX ix_points_ledger_member_at ON points_ledger (member_id, at);
CREATE INDEX ix_lotteries_room_created ON lotteries (room_id, created_at);
CREATE UNIQUE INDEX uq_lotteries_room_open ON lotteries (room_id) WHERE status = 'open';
CREATE INDEX ix_redemptions_status_at ON redemptions (status, at);
COMMIT;
