"""A real MQTT broker for the tests: Debian's mosquitto on a free loopback port, with a
password file (users ``twin`` and ``sensors``) and persistence (sessions and queued QoS 1
messages survive a restart, as a production broker is set up), stopped and started again on
the same port at will."""

from __future__ import annotations

import getpass
import socket
import subprocess
import time
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from bench.common import free_port

USERS = {"twin": "twin-pass", "sensors": "sensor-pass"}


class Mosquitto:
    """mosquitto serving ``127.0.0.1:port`` from `folder` (config, passwords, persistence)."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, free_port()
        folder.mkdir(parents=True, exist_ok=True)
        passwords = folder / "passwords"
        passwords.touch()
        for user, password in USERS.items():
            subprocess.run(["mosquitto_passwd", "-b", str(passwords), user, password], check=True)
        passwords.chmod(0o600)
        (folder / "mosquitto.conf").write_text(
            f"user {getpass.getuser()}\n"  # run as root it would drop to 'mosquitto'
            f"listener {self.port} 127.0.0.1\nallow_anonymous false\n"
            f"password_file {passwords}\npersistence true\n"
            f"persistence_location {folder}/\nautosave_interval 1\n"
        )
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, user: str = "twin") -> str:
        return f"mqtt://{user}:{USERS[user]}@127.0.0.1:{self.port}"

    def start(self) -> None:
        log = (self.folder / "mosquitto.log").open("ab")
        self.process = subprocess.Popen(
            ["mosquitto", "-c", str(self.folder / "mosquitto.conf")], stdout=log, stderr=log
        )
        deadline = time.monotonic() + 10
        while not _listening(self.port):
            assert self.process.poll() is None, (self.folder / "mosquitto.log").read_text()
            assert time.monotonic() < deadline, "mosquitto did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM: mosquitto saves its sessions and queued messages, then exits."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def client(broker: Mosquitto, name: str, *, session: bool = True) -> paho.Client:
    """A connected paho client of user ``sensors`` (its own network thread, reconnecting by
    itself; with `session` a persistent one that queues QoS 1 messages while away)."""
    mqtt = paho.Client(CallbackAPIVersion.VERSION2, client_id=name, clean_session=not session)
    mqtt.username_pw_set("sensors", USERS["sensors"])
    mqtt.reconnect_delay_set(1, 2)
    mqtt.connect("127.0.0.1", broker.port)
    mqtt.loop_start()
    return mqtt
