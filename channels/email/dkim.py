"""DKIM signing (RFC 6376) with one RSA step per message, over the headers of
:data:`DKIM_SIGNED_HEADERS`."""

from __future__ import annotations

import base64
import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path

import dkim as dkimpy
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from dkim.canonicalization import (
    CanonicalizationPolicy,
    correct_empty_body,
    strip_trailing_lines,
)
from pydantic import SecretStr


@dataclass(frozen=True)
class DkimKey:
    """A DKIM signing key: ``d=`` domain, ``s=`` selector and the PEM private key."""

    domain: str
    selector: str
    private_key: SecretStr = field(repr=False)

    @classmethod
    def from_file(cls, *, domain: str, selector: str, path: Path) -> DkimKey:
        """The key in the PEM file at ``path`` (RSA, PKCS#1 or PKCS#8)."""
        try:
            pem = path.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(
                f"cannot read the DKIM private key {path}: {exc}; "
                "set MARKETING_DKIM_PRIVATE_KEY_FILE to a readable PEM file"
            ) from None
        return cls(domain=domain, selector=selector, private_key=SecretStr(pem))


# Covered by the signature: what a receiver shows and what RFC 8058 requires to be signed.
DKIM_SIGNED_HEADERS = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "MIME-Version",
    "Content-Type",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
)


_RELAXED = CanonicalizationPolicy.from_c_value(b"relaxed/relaxed")


def dkim_signature(
    message: bytes,
    *,
    key: rsa.RSAPrivateKey,
    domain: bytes,
    selector: bytes,
    include_headers: list[bytes],
    timestamp: int | None = None,
) -> bytes:
    """The ``DKIM-Signature`` header line (CRLF-terminated) of ``message``: rsa-sha256,
    relaxed/relaxed (RFC 6376).

    dkimpy parses, canonicalises and hashes exactly as its own ``dkim.sign`` does; only the
    RSA step is done by OpenSSL (through ``cryptography``): dkimpy's pure-Python RSA took
    about 20 ms a message, most of ``build_message``'s time.
    """
    headers, body = _parsed(message)
    include = [name.lower() for name in include_headers]
    body_hash = base64.b64encode(hashlib.sha256(_relaxed_body(body)).digest())
    fields = [
        (b"v", b"1"),
        (b"a", b"rsa-sha256"),
        (b"c", _RELAXED.to_c_value()),
        (b"d", domain),
        (b"i", b"@" + domain),
        (b"q", b"dns/txt"),
        (b"s", selector),
        (b"t", str(int(time.time() if timestamp is None else timestamp)).encode("ascii")),
        (b"h", b" : ".join(include)),
        (b"bh", body_hash),
        (b"b", b"0" * 60),  # folded onto a line of its own, as dkimpy does
    ]
    name = b"DKIM-Signature"
    unsigned = dkimpy.fold(b"; ".join(b"=".join(f) for f in fields), namelen=len(name))
    unsigned = dkimpy.RE_BTAG.sub(b"\\1", unsigned)
    hasher = hashlib.sha256()
    dkimpy.hash_headers(
        hasher,
        _RELAXED,
        _RELAXED.canonicalize_headers(headers),
        include,
        (name, b" " + unsigned),
        dict(fields),
    )
    signature = key.sign(hasher.digest(), padding.PKCS1v15(), Prehashed(hashes.SHA256()))
    fields[-1] = (b"b", base64.b64encode(signature))
    value = b"; ".join(b"=".join(f) for f in fields) + b"\r\n"
    return name + b": " + bytes(dkimpy.fold(value, namelen=len(name), linesep=b"\r\n"))


def _parsed(message: bytes) -> tuple[list[list[bytes]], bytes]:
    """``dkimpy.rfc822_parse(message)``, splitting only the header block into lines when
    every line ends in CRLF (then the body is the bytes after the blank line, as is)."""
    end = message.find(b"\r\n\r\n")
    if end < 0 or message.count(b"\n") != message.count(b"\r\n"):
        return dkimpy.rfc822_parse(message)  # type: ignore[no-any-return]
    headers, _ = dkimpy.rfc822_parse(message[: end + 2])
    return headers, message[end + 4 :]


def _relaxed_body(body: bytes) -> bytes:
    """The relaxed canonical body (RFC 6376 section 3.4.4), as dkimpy makes it; without
    its two regular expressions when the body has no whitespace they would change (no tab,
    no two spaces in a row, no space at a line's end: a base64 MIME body)."""
    if b"\t" in body or b"  " in body or b" \r\n" in body:
        return _RELAXED.canonicalize_body(body)  # type: ignore[no-any-return]
    return correct_empty_body(strip_trailing_lines(body))  # type: ignore[no-any-return]


# --- the adapter ----------------------------------------------------------------------
