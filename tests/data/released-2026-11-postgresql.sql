-- The schema and data of the last release before the skills owned their migrations (main at babfc38),
-- made by replaying a short community morning; tests/test_upgrade_in_place.py upgrades it in place.
CREATE TABLE public.account_rooms (
    account_id character varying(128) NOT NULL,
    room_id character varying(128) NOT NULL,
    last_seen timestamp without time zone NOT NULL
);

CREATE TABLE public.activity (
    id bigint NOT NULL,
    at timestamp without time zone NOT NULL,
    room_id character varying(128),
    member_id character varying(128),
    kind character varying(32) NOT NULL,
    skill character varying(64),
    detail json
);

CREATE SEQUENCE public.activity_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.activity_id_seq OWNED BY public.activity.id;

CREATE TABLE public.alembic_version (
    version_num character varying(32) NOT NULL
);

CREATE TABLE public.checkins (
    id bigint NOT NULL,
    member_id character varying(128) NOT NULL,
    local_date character varying(10) NOT NULL,
    streak integer NOT NULL,
    points integer NOT NULL,
    room_id character varying(128),
    at timestamp without time zone NOT NULL
);

CREATE SEQUENCE public.checkins_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.checkins_id_seq OWNED BY public.checkins.id;

CREATE TABLE public.group_buys (
    id character varying(64) NOT NULL,
    cutoff_at timestamp without time zone
);

CREATE TABLE public.lotteries (
    id bigint NOT NULL,
    room_id character varying(128) NOT NULL,
    prize character varying(200) NOT NULL,
    winners integer NOT NULL,
    keyword character varying(64) NOT NULL,
    cost integer NOT NULL,
    commitment character varying(64) NOT NULL,
    seed character varying(64) NOT NULL,
    status character varying(16) NOT NULL,
    created_by character varying(128) NOT NULL,
    created_at timestamp without time zone NOT NULL,
    deadline timestamp without time zone NOT NULL,
    drawn_at timestamp without time zone,
    winner_ids json,
    min_tier character varying(16)
);

CREATE SEQUENCE public.lotteries_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.lotteries_id_seq OWNED BY public.lotteries.id;

CREATE TABLE public.lottery_entries (
    id bigint NOT NULL,
    lottery_id bigint NOT NULL,
    member_id character varying(128) NOT NULL,
    name character varying(128) NOT NULL,
    at timestamp without time zone NOT NULL
);

CREATE SEQUENCE public.lottery_entries_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.lottery_entries_id_seq OWNED BY public.lottery_entries.id;

CREATE TABLE public.member_bindings (
    external_id character varying(128) NOT NULL,
    wechat_id character varying(128) NOT NULL,
    created_at timestamp without time zone NOT NULL
);

CREATE TABLE public.member_days (
    day character varying(10) NOT NULL,
    member_id character varying(128) NOT NULL,
    actions integer NOT NULL,
    messages integer NOT NULL,
    checkins integer NOT NULL
);

CREATE TABLE public.member_names (
    member_id character varying(128) NOT NULL,
    name character varying(256) NOT NULL,
    first_seen timestamp without time zone NOT NULL
);

CREATE TABLE public.member_optouts (
    member_id character varying(128) NOT NULL,
    opted_out_at timestamp without time zone NOT NULL
);

CREATE TABLE public.member_tiers (
    member_id character varying(128) NOT NULL,
    tier character varying(16) NOT NULL,
    since timestamp without time zone NOT NULL,
    joined_day character varying(10),
    last_active_day character varying(10),
    active_days_7 integer NOT NULL,
    active_days_window integer NOT NULL,
    messages_window integer NOT NULL,
    checkins_window integer NOT NULL,
    orders_window integer NOT NULL,
    amount_window double precision NOT NULL,
    points integer NOT NULL,
    r integer NOT NULL,
    f integer NOT NULL,
    m integer NOT NULL
);

CREATE TABLE public.member_windows (
    member_id character varying(128) NOT NULL,
    days_window integer NOT NULL,
    days_recent integer NOT NULL,
    messages_window integer NOT NULL,
    checkins_window integer NOT NULL,
    last_active_day character varying(10)
);

CREATE TABLE public.members (
    id character varying(128) NOT NULL,
    name character varying(256) NOT NULL,
    first_seen timestamp without time zone NOT NULL,
    last_seen timestamp without time zone NOT NULL
);

CREATE TABLE public.order_events (
    id bigint NOT NULL,
    order_id character varying(64) NOT NULL,
    status character varying(20) NOT NULL,
    source character varying(16) NOT NULL,
    received_at timestamp without time zone NOT NULL,
    applied boolean NOT NULL
);

CREATE SEQUENCE public.order_events_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.order_events_id_seq OWNED BY public.order_events.id;

CREATE TABLE public.orders (
    id character varying(64) NOT NULL,
    member_id character varying(128),
    external_member_id character varying(128),
    items json,
    amount_cents bigint NOT NULL,
    status character varying(20) NOT NULL,
    pay_by timestamp without time zone,
    pickup_by timestamp without time zone,
    group_buy_id character varying(64),
    room_id character varying(128),
    tracking text,
    created_at timestamp without time zone NOT NULL,
    updated_at timestamp without time zone NOT NULL
);

CREATE TABLE public.points_balances (
    member_id character varying(128) NOT NULL,
    balance integer NOT NULL,
    updated_at timestamp without time zone NOT NULL
);

CREATE TABLE public.points_ledger (
    id bigint NOT NULL,
    member_id character varying(128) NOT NULL,
    delta integer NOT NULL,
    reason character varying(200) NOT NULL,
    source character varying(32) NOT NULL,
    ref_id character varying(200),
    actor_id character varying(128),
    at timestamp without time zone NOT NULL
);

CREATE SEQUENCE public.points_ledger_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.points_ledger_id_seq OWNED BY public.points_ledger.id;

CREATE TABLE public.proactive_counts (
    day character varying(10) NOT NULL,
    scope character varying(140) NOT NULL,
    kind character varying(16) NOT NULL,
    count integer NOT NULL
);

CREATE TABLE public.proactive_last (
    scope character varying(140) NOT NULL,
    at timestamp without time zone NOT NULL
);

CREATE TABLE public.redemptions (
    id bigint NOT NULL,
    member_id character varying(128) NOT NULL,
    member_name character varying(256) NOT NULL,
    room_id character varying(128),
    item character varying(64) NOT NULL,
    cost integer NOT NULL,
    status character varying(16) NOT NULL,
    at timestamp without time zone NOT NULL,
    fulfilled_at timestamp without time zone,
    fulfilled_by character varying(128)
);

CREATE SEQUENCE public.redemptions_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.redemptions_id_seq OWNED BY public.redemptions.id;

CREATE TABLE public.reminders_sent (
    id bigint NOT NULL,
    ref character varying(64) NOT NULL,
    kind character varying(20) NOT NULL,
    target character varying(140) NOT NULL,
    decided_at timestamp without time zone NOT NULL,
    detail json
);

CREATE SEQUENCE public.reminders_sent_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.reminders_sent_id_seq OWNED BY public.reminders_sent.id;

CREATE TABLE public.reward_stock (
    item character varying(64) NOT NULL,
    stock integer NOT NULL,
    updated_at timestamp without time zone NOT NULL
);

CREATE TABLE public.room_days (
    day character varying(10) NOT NULL,
    room_id character varying(128) NOT NULL,
    active_members integer NOT NULL,
    messages integer NOT NULL,
    checkins integer NOT NULL,
    faq_answered integer NOT NULL,
    faq_missed integer NOT NULL,
    joins integer NOT NULL,
    leaves integer NOT NULL
);

CREATE TABLE public.room_members (
    room_id character varying(128) NOT NULL,
    member_id character varying(128) NOT NULL,
    first_seen timestamp without time zone NOT NULL,
    last_seen timestamp without time zone NOT NULL,
    joined_at timestamp without time zone,
    left_at timestamp without time zone,
    inviter_id character varying(128),
    active boolean NOT NULL
);

CREATE TABLE public.rooms (
    id character varying(128) NOT NULL,
    topic character varying(256) NOT NULL,
    first_seen timestamp without time zone NOT NULL,
    last_seen timestamp without time zone NOT NULL
);

CREATE TABLE public.scheduled_jobs (
    id bigint NOT NULL,
    key character varying(200) NOT NULL,
    handler character varying(100) NOT NULL,
    payload json,
    schedule character varying(16) NOT NULL,
    spec character varying(100) NOT NULL,
    next_run_at timestamp without time zone,
    last_run_at timestamp without time zone,
    status character varying(16) NOT NULL,
    misfire_grace_s integer NOT NULL,
    run_count integer NOT NULL,
    attempts integer NOT NULL,
    last_error text,
    created_at timestamp without time zone NOT NULL,
    room_id character varying(128)
);

CREATE SEQUENCE public.scheduled_jobs_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.scheduled_jobs_id_seq OWNED BY public.scheduled_jobs.id;

CREATE TABLE public.tier_changes (
    id bigint NOT NULL,
    member_id character varying(128) NOT NULL,
    from_tier character varying(16),
    to_tier character varying(16) NOT NULL,
    at timestamp without time zone NOT NULL
);

CREATE SEQUENCE public.tier_changes_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.tier_changes_id_seq OWNED BY public.tier_changes.id;

CREATE TABLE public.tier_daily (
    day character varying(10) NOT NULL,
    tier character varying(16) NOT NULL,
    members integer NOT NULL
);

CREATE TABLE public.tier_orders (
    order_id character varying(128) NOT NULL,
    member_id character varying(128) NOT NULL,
    room_id character varying(128),
    status character varying(32) NOT NULL,
    amount double precision NOT NULL,
    group_buy character varying(128),
    placed_at timestamp without time zone,
    updated_at timestamp without time zone NOT NULL
);

CREATE TABLE public.tier_runs (
    id bigint NOT NULL,
    at timestamp without time zone NOT NULL,
    day character varying(10) NOT NULL,
    rolled_through character varying(10),
    activity_id bigint NOT NULL,
    members integer NOT NULL,
    changed integer NOT NULL,
    duration_ms integer NOT NULL
);

CREATE SEQUENCE public.tier_runs_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.tier_runs_id_seq OWNED BY public.tier_runs.id;

CREATE TABLE public.welcomes (
    room_id character varying(128) NOT NULL,
    member_id character varying(128) NOT NULL,
    welcomed_at timestamp without time zone NOT NULL
);

CREATE TABLE public.window_days (
    day character varying(10) NOT NULL,
    in_window integer NOT NULL,
    in_recent integer NOT NULL
);

ALTER TABLE ONLY public.activity ALTER COLUMN id SET DEFAULT nextval('public.activity_id_seq'::regclass);

ALTER TABLE ONLY public.checkins ALTER COLUMN id SET DEFAULT nextval('public.checkins_id_seq'::regclass);

ALTER TABLE ONLY public.lotteries ALTER COLUMN id SET DEFAULT nextval('public.lotteries_id_seq'::regclass);

ALTER TABLE ONLY public.lottery_entries ALTER COLUMN id SET DEFAULT nextval('public.lottery_entries_id_seq'::regclass);

ALTER TABLE ONLY public.order_events ALTER COLUMN id SET DEFAULT nextval('public.order_events_id_seq'::regclass);

ALTER TABLE ONLY public.points_ledger ALTER COLUMN id SET DEFAULT nextval('public.points_ledger_id_seq'::regclass);

ALTER TABLE ONLY public.redemptions ALTER COLUMN id SET DEFAULT nextval('public.redemptions_id_seq'::regclass);

ALTER TABLE ONLY public.reminders_sent ALTER COLUMN id SET DEFAULT nextval('public.reminders_sent_id_seq'::regclass);

ALTER TABLE ONLY public.scheduled_jobs ALTER COLUMN id SET DEFAULT nextval('public.scheduled_jobs_id_seq'::regclass);

ALTER TABLE ONLY public.tier_changes ALTER COLUMN id SET DEFAULT nextval('public.tier_changes_id_seq'::regclass);

ALTER TABLE ONLY public.tier_runs ALTER COLUMN id SET DEFAULT nextval('public.tier_runs_id_seq'::regclass);

INSERT INTO public.account_rooms VALUES ('bot', 'g1', '2026-11-23 01:00:00');

INSERT INTO public.activity VALUES (1, '2026-11-23 01:00:00', NULL, NULL, 'tier_pass', 'tiers', '{"members": 0, "changed": 0, "days_rolled": 1, "ms": 132, "counts": {}}');
INSERT INTO public.activity VALUES (2, '2026-11-23 01:00:00', NULL, NULL, 'job', 'tiers', '{"job": "tiers.first", "outcome": "ok", "due": "2026-11-23T01:00:00+00:00"}');
INSERT INTO public.activity VALUES (3, '2026-11-23 01:00:00', 'g1', 'u1', 'join', NULL, '{"inviter": "admin1"}');
INSERT INTO public.activity VALUES (4, '2026-11-23 01:00:00', 'g1', 'u2', 'join', NULL, '{"inviter": "admin1"}');
INSERT INTO public.activity VALUES (5, '2026-11-23 01:01:00', 'g1', NULL, 'sent', 'welcome', '{"text": "@\u5c0f\u674e\u2005@\u5c0f\u738b\u2005\u6b22\u8fce\u65b0\u670b\u53cb\u52a0\u5165\u300c\u4f1a\u5458\u798f\u5229\u7fa4\u300d\ud83c\udf89\n\u7fa4\u89c4\uff1a\u53cb\u5584\u4ea4\u6d41\uff0c\u4e0d\u53d1\u5e7f\u544a\u548c\u94fe\u63a5\uff0c\u6709\u95ee\u9898\u968f\u65f6 @\u5c0f\u52a9\u624b \u6216\u7ba1\u7406\u5458\u3002\n\u53d1\u9001\u300c\u7b7e\u5230\u300d\u6bcf\u5929\u9886\u79ef\u5206\uff0c\u53d1\u9001 /help \u770b\u770b\u6211\u8fd8\u80fd\u505a\u4ec0\u4e48\u3002\n\u5148\u6765\u505a\u4e2a\u7b80\u5355\u7684\u81ea\u6211\u4ecb\u7ecd\u5427\uff5e", "priority": "reply", "mentions": ["u1", "u2"]}');
INSERT INTO public.activity VALUES (6, '2026-11-23 01:05:00', 'g1', 'u1', 'checkin', 'checkin', '{"date": "2026-11-23", "streak": 1, "points": 5, "balance": 5}');
INSERT INTO public.activity VALUES (7, '2026-11-23 01:05:00', 'g1', 'u1', 'command', 'checkin', '{"command": "checkin", "args": "", "outcome": "ok"}');
INSERT INTO public.activity VALUES (8, '2026-11-23 01:05:00', 'g1', 'u1', 'message', NULL, '{"text": "\u7b7e\u5230", "len": 2, "to_bot": true}');
INSERT INTO public.activity VALUES (9, '2026-11-23 01:05:30', 'g1', NULL, 'sent', 'checkin', '{"text": "\u7b7e\u5230\u6210\u529f \u2705\n\u5c0f\u674e +5\uff08\u8fde\u7eed 1 \u5929\uff09\uff0c\u5171 5 \u5206", "priority": "reply"}');
INSERT INTO public.activity VALUES (10, '2026-11-23 01:06:00', 'g1', 'u2', 'checkin', 'checkin', '{"date": "2026-11-23", "streak": 1, "points": 5, "balance": 5}');
INSERT INTO public.activity VALUES (11, '2026-11-23 01:06:00', 'g1', 'u2', 'command', 'checkin', '{"command": "checkin", "args": "", "outcome": "ok"}');
INSERT INTO public.activity VALUES (12, '2026-11-23 01:06:00', 'g1', 'u2', 'message', NULL, '{"text": "\u7b7e\u5230", "len": 2, "to_bot": true}');
INSERT INTO public.activity VALUES (13, '2026-11-23 01:06:30', 'g1', NULL, 'sent', 'checkin', '{"text": "\u7b7e\u5230\u6210\u529f \u2705\n\u5c0f\u738b +5\uff08\u8fde\u7eed 1 \u5929\uff09\uff0c\u5171 5 \u5206", "priority": "reply"}');
INSERT INTO public.activity VALUES (14, '2026-11-23 02:00:00', 'g1', 'admin1', 'command', 'lottery', '{"command": "lottery start", "args": "\u5e06\u5e03\u888b", "outcome": "ok"}');
INSERT INTO public.activity VALUES (15, '2026-11-23 02:00:00', 'g1', 'admin1', 'message', NULL, '{"text": "/lottery start \u5e06\u5e03\u888b winners=1 duration=30m keyword=\u62bd\u5956", "len": 52, "to_bot": true}');
INSERT INTO public.activity VALUES (16, '2026-11-23 02:00:00', 'g1', NULL, 'sent', 'lottery', '{"text": "\ud83c\udf81 \u62bd\u5956 #1 \u5f00\u59cb\u5566\uff01\n\u5956\u54c1\uff1a\u5e06\u5e03\u888b\uff081 \u540d\uff09\n\u53c2\u4e0e\u65b9\u5f0f\uff1a\u5728\u7fa4\u91cc\u53d1\u9001\u300c\u62bd\u5956\u300d\uff0c\u6bcf\u4eba\u4e00\u6b21\uff0c\u7ba1\u7406\u5458\u4e0d\u53c2\u4e0e\u3002\n\u5f00\u5956\u65f6\u95f4\uff1a11\u670823\u65e5 10:30\n\u516c\u5e73\u627f\u8bfa\uff1a\u672c\u6b21\u968f\u673a\u79cd\u5b50\u7684 SHA-256 \u662f 6b924ebb1231e6297c891855ead3dc15fb7211213d30b4063f68161970254d1f\n\u5f00\u5956\u65f6\u516c\u5e03\u79cd\u5b50\uff0c\u5927\u5bb6\u53ef\u4ee5\u7528 /lottery verify 1 \u9a8c\u8bc1\u7ed3\u679c\u3002", "priority": "reply"}');
INSERT INTO public.activity VALUES (17, '2026-11-23 02:01:00', 'g1', 'u1', 'message', NULL, '{"text": "\u62bd\u5956", "len": 2, "to_bot": true}');
INSERT INTO public.activity VALUES (18, '2026-11-23 02:01:30', 'g1', NULL, 'sent', 'lottery', '{"text": "@\u5c0f\u674e\u2005\u53c2\u4e0e\u6210\u529f\ud83c\udf89 \u76ee\u524d\u5171 1 \u4eba\u53c2\u4e0e\uff0c\u795d\u597d\u8fd0\uff01", "priority": "reply", "mentions": ["u1"]}');
INSERT INTO public.activity VALUES (19, '2026-11-23 02:02:00', 'g1', 'u1', 'order', 'orders', '{"order_id": "A1", "status": "paid", "amount": 9.9, "group_buy": null}');
INSERT INTO public.activity VALUES (20, '2026-11-23 02:03:00', NULL, 'u2', 'faq_answer', 'faq', '{"q": "\u600e\u4e48\u9000\u8d27", "entry": "return-policy", "score": 0.9745, "mode": "answer"}');
INSERT INTO public.activity VALUES (21, '2026-11-23 02:03:00', NULL, 'u2', 'message', NULL, '{"text": "\u600e\u4e48\u9000\u8d27", "len": 4, "to_bot": true}');
INSERT INTO public.activity VALUES (22, '2026-11-23 02:03:00', NULL, 'u2', 'sent', 'faq', '{"text": "\u652f\u6301 7 \u5929\u65e0\u7406\u7531\u9000\u8d27\uff1a\u5546\u54c1\u672a\u62c6\u5c01\u3001\u4e0d\u5f71\u54cd\u4e8c\u6b21\u9500\u552e\u5373\u53ef\u3002\n\u5728\u5c0f\u7a0b\u5e8f\u300c\u6211\u7684\u8ba2\u5355\u300d\u91cc\u70b9\u300c\u7533\u8bf7\u552e\u540e\u300d\u2192\u300c\u9000\u8d27\u9000\u6b3e\u300d\uff0c\u5ba1\u6838\u901a\u8fc7\u540e\u6309\u9875\u9762\u4e0a\u7684\u5730\u5740\u5bc4\u56de\u3002\n\u5496\u5561\u8c46\u3001\u6302\u8033\u62c6\u5c01\u540e\u5c5e\u4e8e\u98df\u54c1\uff0c\u4e0d\u652f\u6301\u65e0\u7406\u7531\u9000\u8d27\uff08\u8d28\u91cf\u95ee\u9898\u9664\u5916\uff09\u3002", "priority": "reply"}');
INSERT INTO public.activity VALUES (23, '2026-11-23 02:04:00', NULL, 'u2', 'opt_out', 'optout', '{"opted_out": true, "changed": true}');
INSERT INTO public.activity VALUES (24, '2026-11-23 02:04:00', NULL, 'u2', 'command', 'optout', '{"command": "unsubscribe", "args": "", "outcome": "ok"}');
INSERT INTO public.activity VALUES (25, '2026-11-23 02:04:00', NULL, 'u2', 'message', NULL, '{"text": "/\u9000\u8ba2", "len": 3, "to_bot": true}');
INSERT INTO public.activity VALUES (26, '2026-11-23 02:04:00', NULL, 'u2', 'sent', 'optout', '{"text": "\u5df2\u4e3a\u4f60\u9000\u8ba2\uff1a\u4e4b\u540e\u4e0d\u4f1a\u518d\u79c1\u4fe1\u4f60\u901a\u77e5\u548c\u6d3b\u52a8\u6d88\u606f\uff08\u4f60\u7684\u8ba2\u5355\u63d0\u9192\u9664\u5916\uff09\u3002\u60f3\u6062\u590d\u8bf7\u53d1\u9001 /\u8ba2\u9605\u3002", "priority": "reply"}');
INSERT INTO public.activity VALUES (27, '2026-11-23 02:30:00', NULL, NULL, 'job', 'lottery', '{"job": "lottery:1:draw", "outcome": "ok", "due": "2026-11-23T02:30:00+00:00"}');
INSERT INTO public.activity VALUES (28, '2026-11-23 02:30:00', 'g1', NULL, 'sent', 'lottery', '{"text": "@\u5c0f\u674e\u2005\u606d\u559c\u4e2d\u5956\ud83c\udf89 \u62bd\u5956 #1\u300c\u5e06\u5e03\u888b\u300d\u5f00\u5956\u5566\uff01\u5171 1 \u4eba\u53c2\u4e0e\uff0c\u62bd\u51fa 1 \u540d\u3002\u53c2\u4e0e\u4eba\u6570\u4e0d\u8db3\uff0c\u5168\u90e8\u4e2d\u5956\uff01\n\u4e2d\u5956\u540d\u5355\uff1a\u5c0f\u674e\n\u968f\u673a\u79cd\u5b50\uff1a713673ecd34895ceb63d3a1a51f0496cf43077b3943a157d6c840f7dc58202d7\n\u9a8c\u8bc1\u65b9\u6cd5\uff1aSHA-256(\u79cd\u5b50) \u5e94\u7b49\u4e8e\u5f00\u59cb\u65f6\u516c\u5e03\u7684\u627f\u8bfa 6b924ebb1231e6297c891855ead3dc15fb7211213d30b4063f68161970254d1f\uff1b\u628a\u53c2\u4e0e\u8005 id \u6392\u5e8f\uff0c\u7b2c i \u4f4d\uff08\u4ece 0 \u6570\uff09\u53d6 SHA-256(\u79cd\u5b50:i) \u5bf9\u5269\u4f59\u4eba\u6570\u53d6\u4f59\u9009\u51fa\u3002\u53d1\u9001 /lottery verify 1 \u5373\u53ef\u590d\u7b97\u3002", "priority": "transactional", "proactive": "transactional", "mentions": ["u1"]}');
INSERT INTO public.activity VALUES (29, '2026-11-23 03:00:00', 'g1', 'admin1', 'command', 'lottery', '{"command": "lottery start", "args": "\u4fdd\u6e29\u676f", "outcome": "ok"}');
INSERT INTO public.activity VALUES (30, '2026-11-23 03:00:00', 'g1', 'admin1', 'message', NULL, '{"text": "/lottery start \u4fdd\u6e29\u676f winners=1 duration=1d keyword=\u53c2\u52a0", "len": 51, "to_bot": true}');
INSERT INTO public.activity VALUES (31, '2026-11-23 03:00:00', 'g1', NULL, 'sent', 'lottery', '{"text": "\ud83c\udf81 \u62bd\u5956 #2 \u5f00\u59cb\u5566\uff01\n\u5956\u54c1\uff1a\u4fdd\u6e29\u676f\uff081 \u540d\uff09\n\u53c2\u4e0e\u65b9\u5f0f\uff1a\u5728\u7fa4\u91cc\u53d1\u9001\u300c\u53c2\u52a0\u300d\uff0c\u6bcf\u4eba\u4e00\u6b21\uff0c\u7ba1\u7406\u5458\u4e0d\u53c2\u4e0e\u3002\n\u5f00\u5956\u65f6\u95f4\uff1a11\u670824\u65e5 11:00\n\u516c\u5e73\u627f\u8bfa\uff1a\u672c\u6b21\u968f\u673a\u79cd\u5b50\u7684 SHA-256 \u662f 4b50f661f6fd71e9d2cf3536d792911ed59199ca1f96a706b45fee60bdded94e\n\u5f00\u5956\u65f6\u516c\u5e03\u79cd\u5b50\uff0c\u5927\u5bb6\u53ef\u4ee5\u7528 /lottery verify 2 \u9a8c\u8bc1\u7ed3\u679c\u3002", "priority": "reply"}');

INSERT INTO public.alembic_version VALUES ('0300_tiers');
INSERT INTO public.alembic_version VALUES ('0200_gentle_orders');
INSERT INTO public.alembic_version VALUES ('0006');
INSERT INTO public.alembic_version VALUES ('0007');
INSERT INTO public.alembic_version VALUES ('0005');
INSERT INTO public.alembic_version VALUES ('0003');

INSERT INTO public.checkins VALUES (1, 'u1', '2026-11-23', 1, 5, 'g1', '2026-11-23 01:05:00');
INSERT INTO public.checkins VALUES (2, 'u2', '2026-11-23', 1, 5, 'g1', '2026-11-23 01:06:00');

INSERT INTO public.lotteries VALUES (1, 'g1', '帆布袋', 1, '抽奖', 0, '6b924ebb1231e6297c891855ead3dc15fb7211213d30b4063f68161970254d1f', '713673ecd34895ceb63d3a1a51f0496cf43077b3943a157d6c840f7dc58202d7', 'drawn', 'admin1', '2026-11-23 02:00:00', '2026-11-23 02:30:00', '2026-11-23 02:30:00', '["u1"]', NULL);
INSERT INTO public.lotteries VALUES (2, 'g1', '保温杯', 1, '参加', 0, '4b50f661f6fd71e9d2cf3536d792911ed59199ca1f96a706b45fee60bdded94e', '9b1020f229f74a69d069c2c23ca8b946ce40a4e0c2417f2346112eaebdf30eb2', 'open', 'admin1', '2026-11-23 03:00:00', '2026-11-24 03:00:00', NULL, NULL, NULL);

INSERT INTO public.lottery_entries VALUES (1, 1, 'u1', '小李', '2026-11-23 02:01:00');

INSERT INTO public.member_names VALUES ('u1', '小李', '2026-11-23 01:00:00');
INSERT INTO public.member_names VALUES ('u2', '小王', '2026-11-23 01:00:00');
INSERT INTO public.member_names VALUES ('admin1', '管理', '2026-11-23 02:00:00');

INSERT INTO public.member_optouts VALUES ('u2', '2026-11-23 02:04:00');

INSERT INTO public.members VALUES ('u1', '小李', '2026-11-23 01:00:00', '2026-11-23 02:01:00');
INSERT INTO public.members VALUES ('u2', '小王', '2026-11-23 01:00:00', '2026-11-23 02:04:00');
INSERT INTO public.members VALUES ('admin1', '管理', '2026-11-23 02:00:00', '2026-11-23 03:00:00');

INSERT INTO public.order_events VALUES (1, 'A1', 'paid', 'replay', '2026-11-23 02:02:00', true);

INSERT INTO public.orders VALUES ('A1', 'u1', NULL, '["\u82f9\u679c"]', 990, 'paid', NULL, NULL, NULL, 'g1', NULL, '2026-11-23 02:02:00', '2026-11-23 02:02:00');

INSERT INTO public.points_balances VALUES ('u1', 5, '2026-11-23 01:05:00');
INSERT INTO public.points_balances VALUES ('u2', 5, '2026-11-23 01:06:00');

INSERT INTO public.points_ledger VALUES (1, 'u1', 5, '签到（连续 1 天）', 'checkin', 'u1:2026-11-23', NULL, '2026-11-23 01:05:00');
INSERT INTO public.points_ledger VALUES (2, 'u2', 5, '签到（连续 1 天）', 'checkin', 'u2:2026-11-23', NULL, '2026-11-23 01:06:00');

INSERT INTO public.proactive_last VALUES ('room:g1', '2026-11-23 02:30:00');

INSERT INTO public.room_days VALUES ('2026-11-23', '*', 0, 0, 0, 0, 0, 0, 0);

INSERT INTO public.room_members VALUES ('g1', 'u1', '2026-11-23 01:00:00', '2026-11-23 02:01:00', '2026-11-23 01:00:00', NULL, 'admin1', true);
INSERT INTO public.room_members VALUES ('g1', 'u2', '2026-11-23 01:00:00', '2026-11-23 01:06:00', '2026-11-23 01:00:00', NULL, 'admin1', true);
INSERT INTO public.room_members VALUES ('g1', 'admin1', '2026-11-23 02:00:00', '2026-11-23 03:00:00', NULL, NULL, NULL, true);

INSERT INTO public.rooms VALUES ('g1', '会员福利群', '2026-11-23 01:00:00', '2026-11-23 03:00:00');

INSERT INTO public.scheduled_jobs VALUES (1, 'tiers.nightly', 'tiers.recompute', '{}', 'daily', '03:30', '2026-11-23 19:30:00', NULL, 'active', 43200, 0, 0, NULL, '2026-11-23 01:00:00', NULL);
INSERT INTO public.scheduled_jobs VALUES (2, 'tiers.first', 'tiers.recompute', '{}', 'once', '', NULL, '2026-11-23 01:00:00', 'done', 3600, 1, 0, NULL, '2026-11-23 01:00:00', NULL);
INSERT INTO public.scheduled_jobs VALUES (3, 'lottery:1:draw', 'lottery.draw', '{"lottery_id": 1}', 'once', '', NULL, '2026-11-23 02:30:00', 'done', 604800, 1, 0, NULL, '2026-11-23 02:00:00', 'g1');
INSERT INTO public.scheduled_jobs VALUES (4, 'lottery:2:draw', 'lottery.draw', '{"lottery_id": 2}', 'once', '', '2026-11-24 03:00:00', NULL, 'active', 604800, 0, 0, NULL, '2026-11-23 03:00:00', 'g1');

INSERT INTO public.tier_runs VALUES (1, '2026-11-23 01:00:00', '2026-11-23', '2026-11-22', 0, 0, 0, 132);

INSERT INTO public.welcomes VALUES ('g1', 'u1', '2026-11-23 01:00:00');
INSERT INTO public.welcomes VALUES ('g1', 'u2', '2026-11-23 01:00:00');

INSERT INTO public.window_days VALUES ('2026-08-26', 1, 0);
INSERT INTO public.window_days VALUES ('2026-08-27', 1, 0);
INSERT INTO public.window_days VALUES ('2026-08-28', 1, 0);
INSERT INTO public.window_days VALUES ('2026-08-29', 1, 0);
INSERT INTO public.window_days VALUES ('2026-08-30', 1, 0);
INSERT INTO public.window_days VALUES ('2026-08-31', 1, 0);
INSERT INTO public.window_days VALUES ('2026-09-01', 1, 0);
INSERT INTO public.window_days VALUES ('2026-09-02', 1, 0);
INSERT INTO public.window_days VALUES ('2026-09-03', 1, 0);
INSERT INTO public.window_days VALUES ('2026-09-04', 1, 0);
INSERT INTO public.window_days VALUES ('2026-09-05', 1, 0);
INSERT INTO public.window_days VALUES ('2026-09-06', 1, 0);
INSERT INTO public.window_days VALUES ('2026-09-07', 1, 0);
INSERT INTO public.window_days VALUES ('2026-09-08', 1, 0);
INSERT INTO public.window_days VALUES ('2026-09-09', 1, 0);
INSERT INTO public.window_days VALUES ('2026-09-10', 1, 0);
INSERT INTO public.window_days VALUES ('2026-09-11', 1, 0);
INSERT INTO public.window_days VALUES ('2026-09-12', 1, 0);
INSERT INTO public.window_days VALUES ('2026-09-13', 1, 0);
INSERT INTO public.window_days VALUES ('2026-09-14', 1, 0);
INSERT INTO public.window_days VALUES ('2026-09-15', 1, 0);
INSERT INTO public.window_days VALUES ('2026-09-16', 1, 0);
INSERT INTO public.window_days VALUES ('2026-09-17', 1, 0);
INSERT INTO public.window_days VALUES ('2026-09-18', 1, 0);
INSERT INTO public.window_days VALUES ('2026-09-19', 1, 0);
INSERT INTO public.window_days VALUES ('2026-09-20', 1, 0);
INSERT INTO public.window_days VALUES ('2026-09-21', 1, 0);
INSERT INTO public.window_days VALUES ('2026-09-22', 1, 0);
INSERT INTO public.window_days VALUES ('2026-09-23', 1, 0);
INSERT INTO public.window_days VALUES ('2026-09-24', 1, 0);
INSERT INTO public.window_days VALUES ('2026-09-25', 1, 0);
INSERT INTO public.window_days VALUES ('2026-09-26', 1, 0);
INSERT INTO public.window_days VALUES ('2026-09-27', 1, 0);
INSERT INTO public.window_days VALUES ('2026-09-28', 1, 0);
INSERT INTO public.window_days VALUES ('2026-09-29', 1, 0);
INSERT INTO public.window_days VALUES ('2026-09-30', 1, 0);
INSERT INTO public.window_days VALUES ('2026-10-01', 1, 0);
INSERT INTO public.window_days VALUES ('2026-10-02', 1, 0);
INSERT INTO public.window_days VALUES ('2026-10-03', 1, 0);
INSERT INTO public.window_days VALUES ('2026-10-04', 1, 0);
INSERT INTO public.window_days VALUES ('2026-10-05', 1, 0);
INSERT INTO public.window_days VALUES ('2026-10-06', 1, 0);
INSERT INTO public.window_days VALUES ('2026-10-07', 1, 0);
INSERT INTO public.window_days VALUES ('2026-10-08', 1, 0);
INSERT INTO public.window_days VALUES ('2026-10-09', 1, 0);
INSERT INTO public.window_days VALUES ('2026-10-10', 1, 0);
INSERT INTO public.window_days VALUES ('2026-10-11', 1, 0);
INSERT INTO public.window_days VALUES ('2026-10-12', 1, 0);
INSERT INTO public.window_days VALUES ('2026-10-13', 1, 0);
INSERT INTO public.window_days VALUES ('2026-10-14', 1, 0);
INSERT INTO public.window_days VALUES ('2026-10-15', 1, 0);
INSERT INTO public.window_days VALUES ('2026-10-16', 1, 0);
INSERT INTO public.window_days VALUES ('2026-10-17', 1, 0);
INSERT INTO public.window_days VALUES ('2026-10-18', 1, 0);
INSERT INTO public.window_days VALUES ('2026-10-19', 1, 0);
INSERT INTO public.window_days VALUES ('2026-10-20', 1, 0);
INSERT INTO public.window_days VALUES ('2026-10-21', 1, 0);
INSERT INTO public.window_days VALUES ('2026-10-22', 1, 0);
INSERT INTO public.window_days VALUES ('2026-10-23', 1, 0);
INSERT INTO public.window_days VALUES ('2026-10-24', 1, 0);
INSERT INTO public.window_days VALUES ('2026-10-25', 1, 0);
INSERT INTO public.window_days VALUES ('2026-10-26', 1, 0);
INSERT INTO public.window_days VALUES ('2026-10-27', 1, 0);
INSERT INTO public.window_days VALUES ('2026-10-28', 1, 0);
INSERT INTO public.window_days VALUES ('2026-10-29', 1, 0);
INSERT INTO public.window_days VALUES ('2026-10-30', 1, 0);
INSERT INTO public.window_days VALUES ('2026-10-31', 1, 0);
INSERT INTO public.window_days VALUES ('2026-11-01', 1, 0);
INSERT INTO public.window_days VALUES ('2026-11-02', 1, 0);
INSERT INTO public.window_days VALUES ('2026-11-03', 1, 0);
INSERT INTO public.window_days VALUES ('2026-11-04', 1, 0);
INSERT INTO public.window_days VALUES ('2026-11-05', 1, 0);
INSERT INTO public.window_days VALUES ('2026-11-06', 1, 0);
INSERT INTO public.window_days VALUES ('2026-11-07', 1, 0);
INSERT INTO public.window_days VALUES ('2026-11-08', 1, 0);
INSERT INTO public.window_days VALUES ('2026-11-09', 1, 0);
INSERT INTO public.window_days VALUES ('2026-11-10', 1, 0);
INSERT INTO public.window_days VALUES ('2026-11-11', 1, 0);
INSERT INTO public.window_days VALUES ('2026-11-12', 1, 0);
INSERT INTO public.window_days VALUES ('2026-11-13', 1, 0);
INSERT INTO public.window_days VALUES ('2026-11-14', 1, 0);
INSERT INTO public.window_days VALUES ('2026-11-15', 1, 0);
INSERT INTO public.window_days VALUES ('2026-11-16', 1, 0);
INSERT INTO public.window_days VALUES ('2026-11-17', 1, 1);
INSERT INTO public.window_days VALUES ('2026-11-18', 1, 1);
INSERT INTO public.window_days VALUES ('2026-11-19', 1, 1);
INSERT INTO public.window_days VALUES ('2026-11-20', 1, 1);
INSERT INTO public.window_days VALUES ('2026-11-21', 1, 1);
INSERT INTO public.window_days VALUES ('2026-11-22', 1, 1);
INSERT INTO public.window_days VALUES ('2026-11-23', 1, 1);

SELECT pg_catalog.setval('public.activity_id_seq', 31, true);

SELECT pg_catalog.setval('public.checkins_id_seq', 2, true);

SELECT pg_catalog.setval('public.lotteries_id_seq', 2, true);

SELECT pg_catalog.setval('public.lottery_entries_id_seq', 1, true);

SELECT pg_catalog.setval('public.order_events_id_seq', 1, true);

SELECT pg_catalog.setval('public.points_ledger_id_seq', 2, true);

SELECT pg_catalog.setval('public.redemptions_id_seq', 1, false);

SELECT pg_catalog.setval('public.reminders_sent_id_seq', 1, false);

SELECT pg_catalog.setval('public.scheduled_jobs_id_seq', 4, true);

SELECT pg_catalog.setval('public.tier_changes_id_seq', 1, false);

SELECT pg_catalog.setval('public.tier_runs_id_seq', 1, true);

ALTER TABLE ONLY public.account_rooms
    ADD CONSTRAINT account_rooms_pkey PRIMARY KEY (account_id, room_id);

ALTER TABLE ONLY public.activity
    ADD CONSTRAINT activity_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.alembic_version
    ADD CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num);

ALTER TABLE ONLY public.checkins
    ADD CONSTRAINT checkins_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.group_buys
    ADD CONSTRAINT group_buys_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.lotteries
    ADD CONSTRAINT lotteries_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.lottery_entries
    ADD CONSTRAINT lottery_entries_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.member_bindings
    ADD CONSTRAINT member_bindings_pkey PRIMARY KEY (external_id);

ALTER TABLE ONLY public.member_days
    ADD CONSTRAINT member_days_pkey PRIMARY KEY (day, member_id);

ALTER TABLE ONLY public.member_names
    ADD CONSTRAINT member_names_pkey PRIMARY KEY (member_id, name);

ALTER TABLE ONLY public.member_optouts
    ADD CONSTRAINT member_optouts_pkey PRIMARY KEY (member_id);

ALTER TABLE ONLY public.member_tiers
    ADD CONSTRAINT member_tiers_pkey PRIMARY KEY (member_id);

ALTER TABLE ONLY public.member_windows
    ADD CONSTRAINT member_windows_pkey PRIMARY KEY (member_id);

ALTER TABLE ONLY public.members
    ADD CONSTRAINT members_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.order_events
    ADD CONSTRAINT order_events_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.orders
    ADD CONSTRAINT orders_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.points_balances
    ADD CONSTRAINT points_balances_pkey PRIMARY KEY (member_id);

ALTER TABLE ONLY public.points_ledger
    ADD CONSTRAINT points_ledger_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.proactive_counts
    ADD CONSTRAINT proactive_counts_pkey PRIMARY KEY (day, scope, kind);

ALTER TABLE ONLY public.proactive_last
    ADD CONSTRAINT proactive_last_pkey PRIMARY KEY (scope);

ALTER TABLE ONLY public.redemptions
    ADD CONSTRAINT redemptions_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.reminders_sent
    ADD CONSTRAINT reminders_sent_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.reward_stock
    ADD CONSTRAINT reward_stock_pkey PRIMARY KEY (item);

ALTER TABLE ONLY public.room_days
    ADD CONSTRAINT room_days_pkey PRIMARY KEY (day, room_id);

ALTER TABLE ONLY public.room_members
    ADD CONSTRAINT room_members_pkey PRIMARY KEY (room_id, member_id);

ALTER TABLE ONLY public.rooms
    ADD CONSTRAINT rooms_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.scheduled_jobs
    ADD CONSTRAINT scheduled_jobs_key_key UNIQUE (key);

ALTER TABLE ONLY public.scheduled_jobs
    ADD CONSTRAINT scheduled_jobs_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.tier_changes
    ADD CONSTRAINT tier_changes_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.tier_daily
    ADD CONSTRAINT tier_daily_pkey PRIMARY KEY (day, tier);

ALTER TABLE ONLY public.tier_orders
    ADD CONSTRAINT tier_orders_pkey PRIMARY KEY (order_id);

ALTER TABLE ONLY public.tier_runs
    ADD CONSTRAINT tier_runs_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.checkins
    ADD CONSTRAINT uq_checkins_member_date UNIQUE (member_id, local_date);

ALTER TABLE ONLY public.lottery_entries
    ADD CONSTRAINT uq_lottery_entries_member UNIQUE (lottery_id, member_id);

ALTER TABLE ONLY public.order_events
    ADD CONSTRAINT uq_order_events_order_status UNIQUE (order_id, status);

ALTER TABLE ONLY public.points_ledger
    ADD CONSTRAINT uq_points_ledger_source_ref UNIQUE (source, ref_id);

ALTER TABLE ONLY public.reminders_sent
    ADD CONSTRAINT uq_reminders_sent UNIQUE (ref, kind, target);

ALTER TABLE ONLY public.welcomes
    ADD CONSTRAINT welcomes_pkey PRIMARY KEY (room_id, member_id);

ALTER TABLE ONLY public.window_days
    ADD CONSTRAINT window_days_pkey PRIMARY KEY (day);

CREATE INDEX ix_activity_at ON public.activity USING btree (at);

CREATE INDEX ix_lotteries_room_created ON public.lotteries USING btree (room_id, created_at);

CREATE INDEX ix_member_bindings_wechat_id ON public.member_bindings USING btree (wechat_id);

CREATE INDEX ix_member_tiers_tier ON public.member_tiers USING btree (tier);

CREATE INDEX ix_members_last_seen ON public.members USING btree (last_seen);

CREATE INDEX ix_orders_external_member_id ON public.orders USING btree (external_member_id);

CREATE INDEX ix_orders_group_buy_id ON public.orders USING btree (group_buy_id);

CREATE INDEX ix_orders_member_id ON public.orders USING btree (member_id);

CREATE INDEX ix_points_balances_balance ON public.points_balances USING btree (balance);

CREATE INDEX ix_points_ledger_member_at ON public.points_ledger USING btree (member_id, at);

CREATE INDEX ix_redemptions_status_at ON public.redemptions USING btree (status, at);

CREATE INDEX ix_room_members_member_id ON public.room_members USING btree (member_id);

CREATE INDEX ix_scheduled_jobs_due ON public.scheduled_jobs USING btree (status, next_run_at);

CREATE INDEX ix_tier_changes_at ON public.tier_changes USING btree (at);

CREATE INDEX ix_tier_changes_member_at ON public.tier_changes USING btree (member_id, at);

CREATE INDEX ix_tier_orders_member ON public.tier_orders USING btree (member_id);

CREATE UNIQUE INDEX uq_lotteries_room_open ON public.lotteries USING btree (room_id) WHERE ((status)::text = 'open'::text);

ALTER TABLE ONLY public.lottery_entries
    ADD CONSTRAINT lottery_entries_lottery_id_fkey FOREIGN KEY (lottery_id) REFERENCES public.lotteries(id);
