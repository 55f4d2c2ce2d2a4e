"""WeCom (企业微信): the compliant way to reach customers. Callbacks in (crypto.py, callbacks.py), the official API
out (api.py), 微信客服 self-service (kf.py), customer contacts (contacts.py), wired into the app by wiring.py.
Operators: docs/operators/wecom.md."""
