"""Headless Chromium driven over the DevTools protocol: open a page, wait for what React renders,
click, read the DOM and take a screenshot. For UI steps `--dump-dom` cannot take (a click)."""

import base64
import contextlib
import itertools
import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from websockets.sync.client import ClientConnection, connect

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1600,1000",
]


class BrowserError(RuntimeError):
    """Chromium did not start, a DevTools call failed, or the page never showed what was awaited."""


class Page:
    """One browser tab, spoken to over its DevTools websocket."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.ids = itertools.count(1)

    def call(self, method: str, **params: object) -> dict:
        """Send one DevTools command and return its result, skipping the events in between."""
        request_id = next(self.ids)
        self.connection.send(json.dumps({"id": request_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.connection.recv(timeout=60))
            if message.get("id") != request_id:
                continue
            if "error" in message:
                raise BrowserError(f"{method} failed: {message['error']}")
            return message["result"]

    def evaluate(self, expression: str) -> object:
        """The value of a JavaScript expression in the page."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout_s: float = 60) -> object:
        """Poll a JavaScript expression until it is truthy; its value."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.5)
        text = self.evaluate("document.body ? document.body.innerText.slice(0, 2000) : ''")
        raise BrowserError(
            f"{expression!r} still false after {timeout_s} s; the page shows:\n{text}"
        )

    def open(self, url: str) -> None:
        """Navigate and wait for the document to load (not for what React fetches after)."""
        self.call("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete'")

    def screenshot(self, path: Path) -> Path:
        """A PNG of the visible viewport."""
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        return path


def devtools_port(profile: Path, process: subprocess.Popen, timeout_s: float = 30) -> int:
    """The port Chromium chose for DevTools, read from the file it writes into its profile."""
    active = profile / "DevToolsActivePort"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BrowserError(f"chromium exited with {process.returncode}")
        if active.is_file() and active.read_text().strip():
            return int(active.read_text().split()[0])
        time.sleep(0.2)
    raise BrowserError(f"chromium wrote no {active} within {timeout_s} s")


@contextlib.contextmanager
def chromium_page(chromium: str, profile: Path) -> Iterator[Page]:
    """A blank tab of a fresh headless Chromium with its own profile, closed on exit."""
    process = subprocess.Popen(
        [chromium, *CHROMIUM_FLAGS, "--remote-debugging-port=0", f"--user-data-dir={profile}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port = devtools_port(profile, process)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as answer:
            tab = next(t for t in json.load(answer) if t["type"] == "page")
        # Screenshots and DOM texts with inline images exceed the default 1 MiB message size.
        with connect(tab["webSocketDebuggerUrl"], max_size=None) as connection:
            page = Page(connection)
            page.call("Page.enable")
            yield page
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
