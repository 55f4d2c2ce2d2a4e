"""WeCom's callback encryption (the scheme of its WXBizMsgCrypt samples), on the ``cryptography`` library.

- ``msg_signature`` = SHA-1 hex of the sorted, concatenated [token, timestamp, nonce, ciphertext];
- AES-256-CBC, key = base64(EncodingAESKey + "="), IV = the key's first 16 bytes, PKCS#7 padding to 32 bytes;
- plaintext = 16 random bytes + 4-byte big-endian length + message + receive id (the corp id), checked.

Why no WeCom SDK: the official samples are not on PyPI, the community SDKs (wechatpy and the like) bring a whole
client we don't use and pin old crypto; the scheme is 60 lines over a well-kept AES implementation.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 32  # WeCom pads to 32 bytes, not AES's 16


class CryptoError(Exception):
    """A callback that cannot be ours: a wrong signature, bad ciphertext, or another corp's receive id."""


def signature(token: str, timestamp: str, nonce: str, encrypted: str) -> str:
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypted])).encode()).hexdigest()


def aes_key(encoding_aes_key: str) -> bytes:
    """The 43-character EncodingAESKey → the 32-byte AES key."""
    if len(encoding_aes_key) != 43:
        raise ValueError("the EncodingAESKey has 43 characters")
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except binascii.Error:
        raise ValueError("the EncodingAESKey is not base64") from None
    if len(key) != 32:
        raise ValueError("the EncodingAESKey does not decode to 32 bytes")
    return key


class CallbackCrypto:
    """Sign, verify, encrypt and decrypt one app's callbacks: its token, EncodingAESKey and receive id (corp id)."""

    def __init__(self, token: str, encoding_aes_key: str, receive_id: str) -> None:
        if not token or not receive_id:
            raise ValueError("the callback token and the corp id are needed")
        self._token = token  # never logged
        self._key = aes_key(encoding_aes_key)
        self.receive_id = receive_id

    def __repr__(self) -> str:
        return f"CallbackCrypto(receive_id={self.receive_id!r})"

    def sign(self, timestamp: str, nonce: str, encrypted: str) -> str:
        return signature(self._token, timestamp, nonce, encrypted)

    def verify(self, msg_signature: str, timestamp: str, nonce: str, encrypted: str) -> bool:
        expected = self.sign(timestamp, nonce, encrypted)
        return hmac.compare_digest(msg_signature.encode("utf-8", "surrogateescape"), expected.encode())

    def encrypt(self, message: bytes, *, random16: bytes | None = None, receive_id: str | None = None) -> str:
        """base64 ciphertext of ``message`` (what WeCom sends, and what a passive reply carries)."""
        plain = (random16 or os.urandom(16)) + struct.pack(">I", len(message)) + message + \
            (receive_id if receive_id is not None else self.receive_id).encode()
        pad = BLOCK - len(plain) % BLOCK
        plain += bytes([pad]) * pad
        encryptor = Cipher(algorithms.AES(self._key), modes.CBC(self._key[:16])).encryptor()
        return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()

    def decrypt(self, encrypted: str) -> bytes:
        """The message inside ``encrypted``; CryptoError if it is malformed or for another receive id."""
        try:
            raw = base64.b64decode(encrypted, validate=True)
        except (binascii.Error, ValueError):
            raise CryptoError("the ciphertext is not base64") from None
        if not raw or len(raw) % 16:
            raise CryptoError("the ciphertext is not whole AES blocks")
        decryptor = Cipher(algorithms.AES(self._key), modes.CBC(self._key[:16])).decryptor()
        plain = decryptor.update(raw) + decryptor.finalize()
        pad = plain[-1]
        if not 1 <= pad <= BLOCK or plain[-pad:] != bytes([pad]) * pad:
            raise CryptoError("bad padding")
        plain = plain[:-pad]
        if len(plain) < 20:
            raise CryptoError("too short")
        (length,) = struct.unpack(">I", plain[16:20])
        if 20 + length > len(plain):
            raise CryptoError("the length field is past the end")
        message, receive_id = plain[20:20 + length], plain[20 + length:]
        if not hmac.compare_digest(receive_id, self.receive_id.encode()):
            raise CryptoError("another receive id (corp id)")
        return message
