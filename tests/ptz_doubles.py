"""Local doubles of PTZ cameras that speak the real protocols over HTTP on loopback: an ONVIF
PTZ service (SOAP 1.2 ``GetStatus`` with a WS-Security UsernameToken PasswordDigest, ONVIF
Core 5.12) and a Hikvision ISAPI ``/ISAPI/PTZCtrl/channels/{ch}/status`` behind HTTP Digest
authentication (RFC 7616, MD5, qop=auth). A test moves their heads as an operator would from
another system."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SOAP = "http://www.w3.org/2003/05/soap-envelope"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
TPTZ = "http://www.onvif.org/ver20/ptz/wsdl"
TT = "http://www.onvif.org/ver10/schema"
GENERIC = "http://www.onvif.org/ver10/tptz/PanTiltSpaces/PositionGenericSpace"
ZOOM_GENERIC = "http://www.onvif.org/ver10/tptz/ZoomSpaces/PositionGenericSpace"

STATUS = f"""<?xml version="1.0" encoding="UTF-8"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="{SOAP}" xmlns:tptz="{TPTZ}" xmlns:tt="{TT}">
<SOAP-ENV:Body><tptz:GetStatusResponse><tptz:PTZStatus>
<tt:Position><tt:PanTilt x="{{x}}" y="{{y}}" space="{GENERIC}"/>
<tt:Zoom x="{{zoom}}" space="{ZOOM_GENERIC}"/></tt:Position>
<tt:MoveStatus><tt:PanTilt>IDLE</tt:PanTilt><tt:Zoom>IDLE</tt:Zoom></tt:MoveStatus>
<tt:UtcTime>{{now}}</tt:UtcTime>
</tptz:PTZStatus></tptz:GetStatusResponse></SOAP-ENV:Body></SOAP-ENV:Envelope>"""

NOT_AUTHORIZED = f"""<?xml version="1.0" encoding="UTF-8"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="{SOAP}" xmlns:ter="http://www.onvif.org/ver10/error">
<SOAP-ENV:Body><SOAP-ENV:Fault><SOAP-ENV:Code><SOAP-ENV:Value>SOAP-ENV:Sender</SOAP-ENV:Value>
<SOAP-ENV:Subcode><SOAP-ENV:Value>ter:NotAuthorized</SOAP-ENV:Value></SOAP-ENV:Subcode>
</SOAP-ENV:Code><SOAP-ENV:Reason><SOAP-ENV:Text xml:lang="en">Sender not Authorized</SOAP-ENV:Text>
</SOAP-ENV:Reason></SOAP-ENV:Fault></SOAP-ENV:Body></SOAP-ENV:Envelope>"""

ISAPI_STATUS = """<?xml version="1.0" encoding="UTF-8"?>
<PTZStatus version="2.0" xmlns="http://www.hikvision.com/ver20/XMLSchema">
<AbsoluteHigh><elevation>{elevation}</elevation><azimuth>{azimuth}</azimuth>
<absoluteZoom>{zoom}</absoluteZoom></AbsoluteHigh></PTZStatus>"""


@dataclass
class Head:
    """Where a double's head points, in its own protocol's units."""

    pan: float
    tilt: float
    zoom: float


def _reply(handler: BaseHTTPRequestHandler, code: int, text: str, headers: dict[str, str]) -> None:
    """Answer `handler`'s request with `code`, `headers` and `text`."""
    data = text.encode()
    handler.send_response(code)
    for key, value in headers.items():
        handler.send_header(key, value)
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


class _Double:
    """A threaded HTTP server on a free loopback port answering with `handler_class`."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.requests = 0
        self.refused = 0
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class OnvifDouble(_Double):
    """An ONVIF PTZ service at ``/onvif/ptz_service``: `head` holds the generic position
    (PanTilt x, y in [-1, 1]; Zoom x in [0, 1])."""

    def __init__(self, username: str, password: str, profile: str) -> None:
        self.head = Head(0.0, 0.0, 0.0)
        double = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                double.requests += 1
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                kind = self.headers.get("Content-Type", "")
                if self.path != "/onvif/ptz_service" or "application/soap+xml" not in kind:
                    self._answer(404 if self.path != "/onvif/ptz_service" else 415, "")
                    return
                envelope = ET.fromstring(body)
                if not _digest_ok(envelope, username, password):
                    double.refused += 1
                    self._answer(400, NOT_AUTHORIZED)
                    return
                token = envelope.findtext(f".//{{{TPTZ}}}GetStatus/{{{TPTZ}}}ProfileToken")
                if token != profile:
                    self._answer(400, NOT_AUTHORIZED.replace("NotAuthorized", "NoProfile"))
                    return
                head = double.head
                now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                self._answer(200, STATUS.format(x=head.pan, y=head.tilt, zoom=head.zoom, now=now))

            def _answer(self, code: int, text: str) -> None:
                _reply(self, code, text, {"Content-Type": "application/soap+xml; charset=utf-8"})

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(Handler)
        self.xaddr = f"{self.url}/onvif/ptz_service"


def _digest_ok(envelope: ET.Element, username: str, password: str) -> bool:
    """The UsernameToken names `username` and its PasswordDigest is Base64(SHA-1(nonce +
    created + password)) with a Created time within five minutes of now."""
    token = envelope.find(f".//{{{WSSE}}}UsernameToken")
    if token is None or token.findtext(f"{{{WSSE}}}Username") != username:
        return False
    nonce = base64.b64decode(token.findtext(f"{{{WSSE}}}Nonce") or "")
    created = token.findtext(f"{{{WSU}}}Created") or ""
    try:
        when = datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return False
    if abs(datetime.now(UTC) - when) > timedelta(minutes=5):
        return False
    expected = base64.b64encode(hashlib.sha1(nonce + created.encode() + password.encode()).digest())
    return token.findtext(f"{{{WSSE}}}Password") == expected.decode()


class IsapiDouble(_Double):
    """A Hikvision camera's ISAPI PTZ status on channel 1: `head` holds azimuth (deg),
    elevation (deg, positive down) and optical magnification (×), written in tenths."""

    REALM = "DS-2DE4425IW-DE"

    def __init__(self, username: str, password: str) -> None:
        self.head = Head(0.0, 0.0, 1.0)
        double = self
        nonces: set[str] = set()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                double.requests += 1
                if self.path != "/ISAPI/PTZCtrl/channels/1/status":
                    self._answer(404, "", {})
                    return
                if not _authorised(self.headers.get("Authorization", ""), nonces,
                                   username, password, "GET"):  # fmt: skip
                    double.refused += 1
                    nonce = secrets.token_hex(16)
                    nonces.add(nonce)
                    challenge = f'Digest realm="{double.REALM}", qop="auth", nonce="{nonce}"'
                    self._answer(401, "", {"WWW-Authenticate": challenge})
                    return
                head = double.head
                text = ISAPI_STATUS.format(azimuth=round(head.pan * 10),
                                           elevation=round(head.tilt * 10),
                                           zoom=round(head.zoom * 10))  # fmt: skip
                self._answer(200, text, {"Content-Type": "application/xml"})

            def _answer(self, code: int, text: str, headers: dict[str, str]) -> None:
                _reply(self, code, text, headers)

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(Handler)


def _authorised(header: str, nonces: set[str], username: str, password: str, method: str) -> bool:
    """An HTTP Digest (MD5, qop=auth) Authorization header valid for a nonce we issued."""
    if not header.startswith("Digest "):
        return False
    fields = dict(re.findall(r'(\w+)="?([^",]+)"?', header[7:]))
    if fields.get("username") != username or fields.get("nonce") not in nonces:
        return False

    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    ha1 = md5(f"{username}:{IsapiDouble.REALM}:{password}")
    ha2 = md5(f"{method}:{fields.get('uri', '')}")
    expected = md5(
        f"{ha1}:{fields['nonce']}:{fields.get('nc', '')}:{fields.get('cnonce', '')}:auth:{ha2}"
    )
    return fields.get("response") == expected
