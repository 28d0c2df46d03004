"""The email adapter: messages built without I/O, then sent through the real smtplib-based
session to the SMTP sandbox over a real socket."""

from __future__ import annotations

import base64
import re
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime
from email import policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr

from channels.email import (
    DKIM_SIGNED_HEADERS,
    CampaignEmail,
    DkimKey,
    EmailAdapter,
    Recipient,
    email_adapter_from_settings,
    merge_slot,
    message_id_for,
    parse_message_id,
    text_from_html,
    wire_bytes,
)
from channels.errors import AuthExpired, OutcomeUnknown, PermanentError, TransientError
from channels.sandbox.smtp import SmtpFault, SmtpSandbox, free_port
from channels.tracking import TrackingLinks, TrackingToken
from marketing.settings import Settings

BASE_URL = "https://glo.example.org"
SECRET = "tracking-secret-for-tests"
SENDER = "community@example.org"
MARKER = "c0ffee42deadbeef"
POST_ID = 31
NOW = datetime(2026, 3, 1, 2, 30, tzinfo=UTC)

NAME, EMAIL, UNSUBSCRIBE = (merge_slot(n) for n in ("name", "email", "unsubscribe_url"))
CONTENT: dict[str, Any] = {
    "subject": f"สวัสดีคุณ{NAME} ผ้าทอมือลายใหม่จากบ้านดอยเงิน จังหวัดน่าน",
    "preheader": f"คุณ{NAME}: ลดราคา 20% ถึงสิ้นเดือนนี้",
    "sender_name": "วิสาหกิจชุมชนบ้านดอยเงิน",
    "html": (
        "<html><head><title>ข่าวชุมชน</title><style>p {color: red}</style></head>"
        f'<body class="mail"><h1>สวัสดีครับคุณ{NAME}</h1>'
        f"<p>อีเมลของคุณคือ {EMAIL}</p>"
        '<p>ดู <a href="https://shop.example.org/ผ้าทอ?utm_source=email&amp;utm_medium=email">'
        "สินค้าใหม่</a>, โทร <a href='tel:+6654000000'>054-000-000</a>,"
        ' เขียนถึง <a href="mailto:hello@example.org">hello@example.org</a>'
        ' หรือ <a href="#map">แผนที่</a></p>'
        "<script>alert('x')</script></body></html>"
    ),
}


def links() -> TrackingLinks:
    return TrackingLinks(BASE_URL, SecretStr(SECRET))


def adapter(**overrides: Any) -> EmailAdapter:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 1,
        "links": links(),
        "unsubscribe_mailto": "unsubscribe@example.org",
        "local_hostname": "worker.test",
        "timeout": 5.0,
    }
    return EmailAdapter(**{**values, **overrides})


def build(
    content: dict[str, Any] | None = None,
    recipient: Recipient | None = None,
    on: EmailAdapter | None = None,
) -> CampaignEmail:
    return (on or adapter()).build_message(
        content or CONTENT,
        recipient or Recipient(12345, "somchai@example.org", "สมชาย <ใจดี> & ลูก"),
        post_id=POST_ID,
        marker=MARKER,
        sender_address=SENDER,
        now=NOW,
    )


def parsed(raw: bytes) -> EmailMessage:
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    return message


def body(message: EmailMessage, subtype: str) -> str:
    part = message.get_body((subtype,))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")  # MIME text is CRLF-canonical


def header_text(raw: bytes, name: str) -> str:
    """A header decoded by RFC 2047 rules.  CPython's modern parser keeps the space between
    two encoded words in a display name (python/cpython gh-128110), which real mail
    clients drop; the legacy decoder follows the RFC."""
    value = BytesParser(policy=policy.compat32).parsebytes(raw)[name]
    return str(make_header(decode_header(str(value))))


def token_in(url: str) -> str:
    return url.rsplit("/", 1)[-1]


# --- dkim -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dkim_key() -> tuple[str, bytes]:
    """A fresh 2048-bit RSA key: (PKCS#8 PEM private key, the DNS TXT record)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


def dkim_verifies(raw: bytes, record: bytes) -> bool:
    looked_up: list[bytes] = []

    def dns(name: bytes, timeout: int = 5) -> bytes:
        looked_up.append(name)
        return record

    verified = bool(dkim.verify(raw, dnsfunc=dns))
    assert looked_up == [b"glo2026._domainkey.example.org."]
    return verified


def signed_adapter(dkim_key: tuple[str, bytes], **overrides: Any) -> EmailAdapter:
    key = DkimKey(domain="example.org", selector="glo2026", private_key=SecretStr(dkim_key[0]))
    return adapter(dkim=key, **overrides)


# --- build_message: pure --------------------------------------------------------------


def test_thai_subject_body_and_names_survive() -> None:
    message = build()
    received = parsed(message.wire)
    assert received.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in received.iter_parts()] == ["text/plain", "text/html"]
    assert received["Subject"] == ("สวัสดีคุณสมชาย <ใจดี> & ลูก ผ้าทอมือลายใหม่จากบ้านดอยเงิน จังหวัดน่าน")
    assert header_text(message.wire, "From") == f"วิสาหกิจชุมชนบ้านดอยเงิน <{SENDER}>"
    assert header_text(message.wire, "To") == "สมชาย <ใจดี> & ลูก <somchai@example.org>"
    assert received["To"].addresses[0].addr_spec == "somchai@example.org"
    assert "สวัสดีครับคุณสมชาย" in body(received, "plain")
    assert "สวัสดีครับคุณสมชาย" in body(received, "html")
    assert received["Date"].datetime == NOW
    assert message.wire.isascii()  # RFC 2047 words and base64 bodies: any relay takes it


def test_merge_slots_are_filled_raw_in_text_and_escaped_in_html() -> None:
    received = parsed(build().wire)
    text, html = body(received, "plain"), body(received, "html")
    assert "สวัสดีครับคุณสมชาย <ใจดี> & ลูก" in text
    assert "อีเมลของคุณคือ somchai@example.org" in text
    assert "สวัสดีครับคุณสมชาย &lt;ใจดี&gt; &amp; ลูก" in html
    assert "<ใจดี>" not in html
    for part in (text, html, received["Subject"]):
        assert "\ue000" not in part and "\ue001" not in part


def test_each_recipient_gets_their_own_values() -> None:
    first = parsed(build(recipient=Recipient(1, "a@example.org", "อรุณ")).wire)
    second = parsed(build(recipient=Recipient(2, "b@example.org", "บุญมี")).wire)
    assert "อรุณ" in first["Subject"] and "บุญมี" in second["Subject"]
    assert "a@example.org" in body(first, "plain") and "b@example.org" in body(second, "plain")
    assert first["List-Unsubscribe"] != second["List-Unsubscribe"]


def test_preheader_is_hidden_preview_text_first_in_the_body() -> None:
    html = body(parsed(build().wire), "html")
    opening = re.search(r'<body class="mail"><div style="display:none;[^"]*">([^<]*)</div>', html)
    assert opening is not None
    assert opening.group(1) == "คุณสมชาย &lt;ใจดี&gt; &amp; ลูก: ลดราคา 20% ถึงสิ้นเดือนนี้"
    assert "ลดราคา 20%" not in body(parsed(build().wire), "plain")


def test_message_id_carries_the_marker_and_subscriber() -> None:
    message = build()
    assert message["Message-ID"] == f"<{MARKER}.12345@example.org>"
    assert parse_message_id(message["Message-ID"]) == (MARKER, 12345)
    assert build()["Message-ID"] == message["Message-ID"]  # the same delivery, the same id
    assert parse_message_id("<CAF=abc@mail.gmail.com>") is None
    with pytest.raises(ValueError, match="cannot go in a Message-ID"):
        message_id_for("has space", 1, "example.org")


def test_list_unsubscribe_headers_are_exact() -> None:
    message = build()
    unsubscribe = links().unsubscribe_url(post_id=POST_ID, subscriber_id=12345)
    token = token_in(unsubscribe)
    assert message["List-Unsubscribe"] == (
        f"<{unsubscribe}>, <mailto:unsubscribe@example.org?subject=unsubscribe%20{token}>"
    )
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # On the wire too: folded only between the two URIs, never RFC 2047-encoded.
    assert (
        f"List-Unsubscribe: <{unsubscribe}>,\r\n"
        f" <mailto:unsubscribe@example.org?subject=unsubscribe%20{token}>\r\n"
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
    ).encode() in message.wire
    assert links().verify(token, kind="unsubscribe") == TrackingToken("unsubscribe", POST_ID, 12345)


def test_an_unsubscribe_footer_is_added_when_the_content_has_none() -> None:
    received = parsed(build().wire)
    unsubscribe = links().unsubscribe_url(post_id=POST_ID, subscriber_id=12345)
    html, text = body(received, "html"), body(received, "plain")
    assert f'<a href="{unsubscribe}">ยกเลิกการรับข่าวสาร (unsubscribe)</a>' in html
    assert html.index("ยกเลิกการรับข่าวสาร") < html.index("</body>")
    assert unsubscribe in text


def test_content_with_its_own_unsubscribe_link_gets_no_second_one() -> None:
    own = {
        **CONTENT,
        "html": f'<p>สวัสดี</p><p><a href="{UNSUBSCRIBE}">เลิกรับข่าว</a></p>',
        "text": f"สวัสดี\nเลิกรับข่าว: {UNSUBSCRIBE}\n",
    }
    received = parsed(build(own).wire)
    unsubscribe = links().unsubscribe_url(post_id=POST_ID, subscriber_id=12345)
    html, text = body(received, "html"), body(received, "plain")
    assert html.count(unsubscribe) == 1 and "ยกเลิกการรับข่าวสาร" not in html
    assert text == f"สวัสดี\nเลิกรับข่าว: {unsubscribe}\n"


def test_given_text_without_an_unsubscribe_slot_gets_the_footer() -> None:
    received = parsed(build({**CONTENT, "text": "ข้อความล้วน"}).wire)
    unsubscribe = links().unsubscribe_url(post_id=POST_ID, subscriber_id=12345)
    assert body(received, "plain") == (
        f"ข้อความล้วน\n\n--\nยกเลิกการรับข่าวสาร (unsubscribe): {unsubscribe}\n"
    )


def test_web_links_become_signed_click_links_and_others_stay() -> None:
    html = body(parsed(build().wire), "html")
    hrefs = [a or b for a, b in re.findall(r"<a href=(?:\"([^\"]*)\"|'([^']*)')", html)]
    click, tel, mailto, anchor, unsubscribe = hrefs
    assert click.startswith(BASE_URL + "/e/click/")
    assert links().verify(token_in(click)) == TrackingToken(
        "click",
        POST_ID,
        12345,
        "https://shop.example.org/ผ้าทอ?utm_source=email&utm_medium=email",
    )
    assert (tel, mailto, anchor) == ("tel:+6654000000", "mailto:hello@example.org", "#map")
    assert links().verify(token_in(unsubscribe), kind="unsubscribe") is not None


def test_an_open_pixel_closes_the_body() -> None:
    html = body(parsed(build().wire), "html")
    pixel = re.search(r'<img src="([^"]+)" width="1" height="1" alt=""[^>]*></body>', html)
    assert pixel is not None
    assert links().verify(token_in(pixel.group(1))) == TrackingToken("open", POST_ID, 12345)


def test_text_is_derived_from_the_html() -> None:
    text = body(parsed(build().wire), "plain")
    assert "ดู สินค้าใหม่ (https://shop.example.org/ผ้าทอ?utm_source=email&utm_medium=email)" in text
    assert "เขียนถึง hello@example.org หรือ แผนที่" in text
    assert "<" not in text.replace("<ใจดี>", "")
    for hidden in ("alert", "color: red", "ข่าวชุมชน"):  # script, style, title
        assert hidden not in text


def test_text_from_html_layout() -> None:
    html = (
        "<div><h2>หัวข้อ</h2><p>ย่อหน้า   หนึ่ง<br>บรรทัดสอง</p>"
        "<ul><li>ข้อหนึ่ง</li><li>ข้อสอง</li></ul>"
        '<p><img src="x.png" alt="ภาพผ้าทอ"> <a href="https://x.example.org/">https://x.example.org/</a></p></div>'
    )
    assert text_from_html(html) == (
        "หัวข้อ\n\nย่อหน้า หนึ่ง\nบรรทัดสอง\n\n- ข้อหนึ่ง\n\n- ข้อสอง\n\nภาพผ้าทอ https://x.example.org/\n"
    )


def test_the_object_and_its_wire_bytes_agree() -> None:
    message = build()
    assert wire_bytes(message) == message.wire
    assert message.as_bytes() == message.wire
    assert message.envelope_sender == SENDER
    assert message.envelope_recipients == ("somchai@example.org",)


def test_dkim_signature_verifies_and_covers_the_unsubscribe_headers(
    dkim_key: tuple[str, bytes],
) -> None:
    message = build(on=signed_adapter(dkim_key))
    assert dkim_verifies(message.wire, dkim_key[1])
    assert message.as_bytes() == message.wire
    tags = dict(
        part.strip().split("=", 1)
        for part in " ".join(message["DKIM-Signature"].split()).split(";")
        if part.strip()
    )
    signed = {name.strip() for name in tags["h"].split(":")}
    assert {"list-unsubscribe", "list-unsubscribe-post", "from", "subject"} <= signed
    assert signed == {name.lower() for name in DKIM_SIGNED_HEADERS}
    assert (tags["d"], tags["s"], tags["c"]) == ("example.org", "glo2026", "relaxed/relaxed")
    # Change the one-click header, or the body, and the signature no longer holds.
    forged = message.wire.replace(b"List-Unsubscribe=One-Click", b"List-Unsubscribe=Never")
    assert not dkim_verifies(forged, dkim_key[1])
    html_part = message.wire.rsplit(b"\r\n\r\n", 2)
    assert not dkim_verifies(message.wire.replace(html_part[-2][:8], b"AAAAAAAA"), dkim_key[1])


def test_an_invalid_recipient_address_is_a_permanent_error_naming_the_problem() -> None:
    with pytest.raises(PermanentError) as refused:
        build(recipient=Recipient(7, "somchai@@example", "สมชาย"))
    assert refused.value.code == "email:invalid-address"
    assert "subscriber 7" in str(refused.value) and "somchai@@example" in str(refused.value)
    assert "@-sign" in str(refused.value)
    assert refused.value.hint and "import" in refused.value.hint


def test_invalid_content_or_sender_is_permanent() -> None:
    with pytest.raises(PermanentError, match="subject is empty") as refused:
        build({**CONTENT, "subject": ""})
    assert refused.value.code == "email:invalid-content"
    with pytest.raises(PermanentError, match="sender address") as refused:
        adapter().build_message(
            CONTENT, Recipient(1, "a@example.org"), post_id=1, marker="m", sender_address="x"
        )
    assert refused.value.code == "email:invalid-sender"


def test_an_idn_domain_goes_as_ascii_and_a_thai_mailbox_needs_smtputf8() -> None:
    idn = build(recipient=Recipient(1, "somchai@ตัวอย่าง.ไทย"))
    assert idn.envelope_recipients == ("somchai@xn--72c1a1bt4awk9o.xn--o3cw4h",)
    assert idn.wire.isascii()
    thai = build(recipient=Recipient(2, "สมชาย@example.org", "สมชาย"))
    assert thai.envelope_recipients == ("สมชาย@example.org",)
    assert "สมชาย@example.org".encode() in thai.wire  # RFC 6532: UTF-8 headers


def test_configuration_errors_say_what_to_set(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="MARKETING_PUBLIC_BASE_URL"):
        adapter(links=TrackingLinks("http://glo.example.org", SecretStr("x")))
    adapter(links=TrackingLinks("http://127.0.0.1:8000", SecretStr("x")))  # fine locally
    with pytest.raises(ValueError, match="MARKETING_UNSUBSCRIBE_MAILTO"):
        adapter(unsubscribe_mailto="not-an-address")
    with pytest.raises(ValueError, match="MARKETING_SMTP_SECURITY"):
        adapter(security="tls")
    with pytest.raises(ValueError, match="must be ASCII"):
        adapter(username="u", password=SecretStr("รหัสผ่าน"))
    for broken in ("-----BEGIN nothing", "-----BEGIN PRIVATE KEY-----\n!!x\n-----END"):
        with pytest.raises(ValueError, match="not an RSA key in PEM form"):
            adapter(dkim=DkimKey("example.org", "s", SecretStr(broken)))
    with pytest.raises(ValueError, match="MARKETING_DKIM_SELECTOR"):
        email_adapter_from_settings(Settings(dkim_domain="example.org"))
    with pytest.raises(ValueError, match="cannot read the DKIM private key"):
        email_adapter_from_settings(
            Settings(
                dkim_domain="example.org",
                dkim_selector="s",
                dkim_private_key_file=tmp_path / "missing.pem",
            )
        )


def test_adapter_from_settings(tmp_path: Path, dkim_key: tuple[str, bytes]) -> None:
    key_file = tmp_path / "dkim.pem"
    key_file.write_text(dkim_key[0])
    built = email_adapter_from_settings(
        Settings(
            smtp_host="relay.example.org",
            smtp_port=587,
            smtp_security="starttls",
            smtp_username="glo",
            smtp_password=SecretStr("relay-password"),
            smtp_timeout=12.5,
            public_base_url=BASE_URL,
            tracking_secret=SecretStr(SECRET),
            unsubscribe_mailto="optout@example.org",
            dkim_domain="example.org",
            dkim_selector="glo2026",
            dkim_private_key_file=key_file,
        )
    )
    assert (built.host, built.port, built.security, built.timeout) == (
        "relay.example.org",
        587,
        "starttls",
        12.5,
    )
    assert built.dkim is not None and built.dkim.selector == "glo2026"
    assert built.unsubscribe_mailto == "optout@example.org"
    assert "relay-password" not in repr(built) and "PRIVATE KEY" not in repr(built.dkim)
    message = build(on=built)
    assert dkim_verifies(message.wire, dkim_key[1])
    assert links().verify(token_in(message["List-Unsubscribe"].split(">")[0])) is not None


# --- over the wire --------------------------------------------------------------------


@pytest.fixture
def sandbox() -> Iterator[SmtpSandbox]:
    with SmtpSandbox() as running:
        yield running


def test_sent_bytes_arrive_exactly_and_thai_is_intact(
    sandbox: SmtpSandbox, dkim_key: tuple[str, bytes]
) -> None:
    sending = signed_adapter(dkim_key, port=sandbox.port)
    message = build(on=sending)
    with sending.connect() as session:
        session.send(message)
    (received,) = sandbox.messages
    assert received.raw == message.wire
    assert received.mail_from == SENDER
    assert received.rcpt_tos == ("somchai@example.org",)
    assert received.message["Subject"].startswith("สวัสดีคุณสมชาย <ใจดี> & ลูก ผ้าทอมือ")
    assert header_text(received.raw, "From") == f"วิสาหกิจชุมชนบ้านดอยเงิน <{SENDER}>"
    assert "สวัสดีครับคุณสมชาย" in body(received.message, "plain")
    assert dkim_verifies(received.raw, dkim_key[1])
    assert (received.marker, received.subscriber_id) == (MARKER, 12345)


def test_a_batch_of_100_reuses_one_connection(sandbox: SmtpSandbox) -> None:
    sending = adapter(port=sandbox.port)
    messages = [
        build(recipient=Recipient(n, f"member{n}@example.org", f"สมาชิก {n}"), on=sending)
        for n in range(100)
    ]
    with sending.connect() as session:
        for message in messages:
            session.send(message)
    assert session.connections == 1
    assert sandbox.connections == 1
    assert sandbox.count_by_marker() == {MARKER: 100}
    assert sorted(m.subscriber_id or 0 for m in sandbox.messages) == list(range(100))
    assert sandbox.wait_open_connections(0) == 0  # QUIT at the end of the batch


def test_starttls_and_login() -> None:
    with SmtpSandbox(security="starttls", username="glo", password="relay-pass") as sandbox:
        sending = adapter(
            port=sandbox.port,
            security="starttls",
            username="glo",
            password=SecretStr("relay-pass"),
            ssl_context=sandbox.client_ssl_context(),
        )
        with sending.connect() as session:
            session.send(build(on=sending))
        assert len(sandbox.messages) == 1


def test_implicit_tls_and_login() -> None:
    with SmtpSandbox(security="ssl", username="glo", password="relay-pass") as sandbox:
        sending = adapter(
            port=sandbox.port,
            security="ssl",
            username="glo",
            password=SecretStr("relay-pass"),
            ssl_context=sandbox.client_ssl_context(),
        )
        with sending.connect() as session:
            session.send(build(on=sending))
        assert len(sandbox.messages) == 1


def test_a_refused_login_is_auth_expired_and_never_shows_the_password() -> None:
    with SmtpSandbox(security="starttls", username="glo", password="relay-pass") as sandbox:
        sending = adapter(
            port=sandbox.port,
            security="starttls",
            username="glo",
            password=SecretStr("wrong-password-123"),
            ssl_context=sandbox.client_ssl_context(),
        )
        with pytest.raises(AuthExpired) as refused:
            sending.connect()
        assert refused.value.code == "email:smtp-535"
        assert "MARKETING_SMTP_PASSWORD" in (refused.value.hint or "")
        assert "wrong-password-123" not in f"{refused.value} {refused.value.hint} {sending!r}"
        assert sandbox.open_connections == 0 or sandbox.messages == []


def test_a_relay_that_wants_a_login_we_do_not_have() -> None:
    with SmtpSandbox(username="glo", password="relay-pass") as sandbox:
        sending = adapter(port=sandbox.port)
        with sending.connect() as session, pytest.raises(AuthExpired, match="530"):
            session.send(build(on=sending))


def test_an_untrusted_certificate_is_permanent() -> None:
    with SmtpSandbox(security="starttls") as sandbox:
        sending = adapter(
            port=sandbox.port, security="starttls", ssl_context=ssl.create_default_context()
        )
        with pytest.raises(PermanentError) as refused:
            sending.connect()
        assert refused.value.code == "email:smtp-certificate"


def test_starttls_wanted_but_not_offered_is_permanent(sandbox: SmtpSandbox) -> None:
    sending = adapter(port=sandbox.port, security="starttls")
    with pytest.raises(PermanentError, match="does not offer STARTTLS"):
        sending.connect()


def test_nobody_listening_is_transient() -> None:
    sending = adapter(port=free_port())
    with pytest.raises(TransientError, match="cannot reach the SMTP relay") as refused:
        sending.connect()
    assert refused.value.code == "email:smtp-connect"


def test_4xx_is_transient_and_the_connection_stays_usable(sandbox: SmtpSandbox) -> None:
    sending = adapter(port=sandbox.port)
    sandbox.inject(SmtpFault(stage="rcpt", code=451, message="4.7.1 greylisted, come back later"))
    with sending.connect() as session:
        with pytest.raises(TransientError, match="451 4.7.1 greylisted") as refused:
            session.send(build(on=sending))
        assert refused.value.code == "email:smtp-451" and refused.value.retryable
        session.send(build(on=sending))
    assert session.connections == 1 and len(sandbox.messages) == 1


def test_a_refused_recipient_is_permanent_with_the_servers_words(sandbox: SmtpSandbox) -> None:
    sending = adapter(port=sandbox.port)
    sandbox.inject(
        SmtpFault(
            code=550,
            message="5.1.1 <gone@example.org>: Recipient address rejected: User unknown",
            recipients=frozenset({"gone@example.org"}),
        )
    )
    with sending.connect() as session:
        with pytest.raises(PermanentError) as refused:
            session.send(build(recipient=Recipient(9, "gone@example.org"), on=sending))
        session.send(build(on=sending))
    assert refused.value.code == "email:smtp-550"
    assert "Recipient address rejected: User unknown" in str(refused.value)
    assert not refused.value.retryable
    assert [m.rcpt_tos for m in sandbox.messages] == [("somchai@example.org",)]


def test_5xx_after_the_data_is_permanent(sandbox: SmtpSandbox) -> None:
    sending = adapter(port=sandbox.port)
    sandbox.inject(SmtpFault(stage="data", code=554, message="5.7.1 message content rejected"))
    with sending.connect() as session, pytest.raises(PermanentError, match="5.7.1 message"):
        session.send(build(on=sending))
    assert sandbox.messages == []


def test_a_421_closing_relay_is_transient_and_the_next_send_reconnects(
    sandbox: SmtpSandbox,
) -> None:
    sending = adapter(port=sandbox.port)
    sandbox.inject(SmtpFault(stage="mail", code=421, message="4.3.2 shutting down"))
    with sending.connect() as session:
        with pytest.raises(TransientError, match="421"):
            session.send(build(on=sending))
        session.send(build(on=sending))
    assert session.connections == 2 and len(sandbox.messages) == 1


def test_a_drop_after_the_data_is_outcome_unknown(sandbox: SmtpSandbox) -> None:
    sending = adapter(port=sandbox.port)
    sandbox.inject(SmtpFault(action="drop", stage="data"))
    with sending.connect() as session:
        with pytest.raises(OutcomeUnknown) as unknown:
            session.send(build(on=sending))
        assert unknown.value.code == "email:smtp-no-answer"
        assert "check before sending it again" in (unknown.value.hint or "")
        # The relay did get it: exactly the ambiguity OutcomeUnknown stands for.
        assert sandbox.count_by_marker() == {MARKER: 1}
        session.send(build(recipient=Recipient(2, "next@example.org"), on=sending))
    assert session.connections == 2 and len(sandbox.messages) == 2


def test_a_timeout_after_the_data_is_outcome_unknown(sandbox: SmtpSandbox) -> None:
    sending = adapter(port=sandbox.port, timeout=0.5)
    sandbox.inject(SmtpFault(action="stall", stage="data", seconds=10))
    with sending.connect() as session, pytest.raises(OutcomeUnknown, match="timed out"):
        session.send(build(on=sending))
    assert len(sandbox.messages) == 1


def test_a_drop_before_the_data_is_retried_once_on_a_new_connection(
    sandbox: SmtpSandbox,
) -> None:
    sending = adapter(port=sandbox.port)
    sandbox.inject(SmtpFault(action="drop", stage="mail"))
    with sending.connect() as session:
        session.send(build(on=sending))
    assert session.connections == 2
    assert sandbox.count_by_marker() == {MARKER: 1}  # exactly once


def test_a_drop_before_the_data_twice_is_transient_and_nothing_was_sent(
    sandbox: SmtpSandbox,
) -> None:
    sending = adapter(port=sandbox.port)
    sandbox.inject(SmtpFault(action="drop", stage="rcpt", times=2))
    with sending.connect() as session, pytest.raises(TransientError) as refused:
        session.send(build(on=sending))
    assert refused.value.code == "email:smtp-disconnected"
    assert sandbox.messages == []


def test_an_idle_connection_closed_by_the_relay_is_reopened(sandbox: SmtpSandbox) -> None:
    sending = adapter(port=sandbox.port)
    with sending.connect() as session:
        session.send(build(recipient=Recipient(1, "a@example.org"), on=sending))
        sandbox.drop_connections()  # the relay's idle timeout
        session.send(build(recipient=Recipient(2, "b@example.org"), on=sending))
    assert session.connections == 2
    assert [m.subscriber_id for m in sandbox.messages] == [1, 2]


def test_a_thai_mailbox_goes_with_smtputf8(sandbox: SmtpSandbox) -> None:
    sending = adapter(port=sandbox.port)
    with sending.connect() as session:
        session.send(build(recipient=Recipient(5, "สมชาย@example.org", "สมชาย"), on=sending))
    (received,) = sandbox.messages
    assert received.rcpt_tos == ("สมชาย@example.org",)
    assert received.message["To"].addresses[0].addr_spec == "สมชาย@example.org"


@pytest.mark.parametrize(
    "message",
    [
        b"Subject: a\r\nTo: b@example.org\r\n\r\nTGluZSBvbmU=\r\nLS0=\r\n",
        b"Subject: a\r\n folded\r\n\r\nline  with  spaces \r\n\ttab\r\n\r\n\r\n",
        b"Subject: a\r\n\r\n",
        b"Subject: a\nTo: b@example.org\n\nbare line feeds\n",
        b"Subject: a\r\n\r\nmixed\nends\r\n",
    ],
)
def test_dkim_shortcuts_read_the_message_as_dkimpy_does(message: bytes) -> None:
    """The DKIM signer's shortcuts (header block only; no body regexes without the
    whitespace they change) give exactly dkimpy's headers and relaxed body."""
    from dkim.canonicalization import CanonicalizationPolicy

    from channels.email.dkim import _parsed, _relaxed_body

    relaxed = CanonicalizationPolicy.from_c_value(b"relaxed/relaxed")
    headers, body = dkim.rfc822_parse(message)
    assert _parsed(message) == (headers, body)
    assert _relaxed_body(body) == relaxed.canonicalize_body(body)
