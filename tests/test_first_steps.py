"""The README's First steps, run as written: its shell blocks in bash, against a real
``chathooks serve`` and ``chathooks listen`` in a fresh directory, then its last step (the
owner's link and the webhook's page) in Chromium on a desktop and a phone.

Only what cannot be the same here is translated: free ports instead of 8000 and 8001 (other
tests run at the same time), this interpreter instead of ``./scripts/serve`` and
``.venv/bin/chathooks``, and each ``…_...`` placeholder replaced by the value the user
copies from the output above it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from playwright.sync_api import Browser, expect

from tests.test_listen import Running, free_port
from tests.test_web import PASSWORD

README = Path(__file__).resolve().parent.parent / "README.md"
PLACEHOLDER = re.compile(r"\b(chka_|chk_|whsec_)\.\.\.")
COPIED = {
    "chka_": re.compile(r"^\s+(chka_\S+)\s*$", re.MULTILINE),
    "chk_": re.compile(r'"api_token":\s*"(chk_[^"]+)"'),
    "whsec_": re.compile(r'"secret":\s*"(whsec_[^"]+)"'),
}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


def first_steps() -> str:
    text = README.read_text()
    start = text.index("## First steps")
    return text[start : text.index("\n## ", start + 1)]


class FirstSteps:
    """Runs the section's blocks in order, keeping what a user would copy."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.serve_port, self.listen_port = free_port(), free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CHATHOOKS_")}
        self.env["PYTHONUNBUFFERED"] = "1"
        self.copied: dict[str, str] = {}
        self.assignments: list[str] = []
        self.outputs: list[str] = []
        self.background: list[Running] = []

    def translate(self, line: str) -> str:
        if line.lstrip().startswith("#"):
            return line  # an answer shown in the README, not a command
        python = f"{sys.executable} -m chathooks"
        line = line.replace("./scripts/serve", f"{python} serve --port {self.serve_port}")
        line = line.replace(".venv/bin/chathooks", python)
        for host in ("localhost:8000", "127.0.0.1:8000"):
            line = line.replace(host, f"127.0.0.1:{self.serve_port}")
        line = line.replace("127.0.0.1:8001", f"127.0.0.1:{self.listen_port}")
        line = line.replace("--port 8001", f"--port {self.listen_port}")
        return PLACEHOLDER.sub(lambda m: self.copied[m.group(1)], line)

    def keep(self, output: str) -> None:
        self.outputs.append(output)
        for prefix, pattern in COPIED.items():
            if found := pattern.search(output):
                self.copied[prefix] = found.group(1)

    def start(self, line: str, ready: str) -> Running:
        running = Running(["bash", "-c", self.translate(line)], env=self.env, cwd=self.cwd)
        self.background.append(running)
        running.wait_for_output(ready)
        return running

    def run(self, lines: list[str]) -> None:
        script = "\n".join(self.translate(line) for line in [*self.assignments, *lines])
        done = subprocess.run(
            ["bash", "-euc", script],
            check=False,
            env=self.env,
            cwd=self.cwd,
            text=True,
            capture_output=True,
        )
        assert done.returncode == 0, done.stderr
        self.keep(done.stdout)

    def run_block(self, block: str) -> None:
        """Runs up to each line that needs a value copied from what came before."""
        pending: list[str] = []
        for line in block.splitlines():
            if PLACEHOLDER.search(line) and not line.lstrip().startswith("#") and pending:
                self.run(pending)
                pending = []
            if re.match(r"^[A-Z_]+=", line):
                self.assignments.append(line)
            else:
                pending.append(line)
        if pending:
            self.run(pending)

    def stop(self) -> None:
        for running in self.background:
            running.stop()


def test_first_steps_as_written_end_with_a_request_seen_in_listen(
    tmp_path: Path, browser: Browser
) -> None:
    section = first_steps()
    assert "CHATHOOKS_ALLOW_PRIVATE_TARGETS=true" in section
    blocks = re.findall(r"```sh\n(.*?)```", section, re.DOTALL)
    steps = FirstSteps(tmp_path)
    try:
        listen = None
        for block in blocks:
            if "scripts/serve" in block:
                serve = steps.start(block.strip(), ready="chka_")
                steps.keep(serve.output)
            elif "chathooks listen" in block:
                listen = steps.start(block.strip(), ready="Listening on")
            else:
                steps.run_block(block)
        assert listen is not None, "the First steps never start chathooks listen"
        assert '"status":"accepted"' in steps.outputs[-1].replace(" ", "")
        listen.wait_for_output("lorem ipsum")
        assert "POST /hooks/whatsapp" in listen.output
        assert re.search(r"webhook-id: msg_\w+", listen.output)
        assert "signature valid" in listen.output

        # The last step: the owner's link, a password, and the webhook's page.
        link = re.search(r'"owner_password_link":\s*"([^"]+)"', "".join(steps.outputs))
        assert link
        page_link = re.search(r"<(http://127\.0\.0\.1:8000/webhooks/outbound/\d+)>", section)
        assert page_link
        webhook_page = steps.translate(page_link.group(1))
        for device in ({"viewport": {"width": 1280, "height": 900}}, PHONE):
            context = browser.new_context(**device)
            context.set_default_timeout(15_000)
            page = context.new_page()
            if device is PHONE:
                page.goto(webhook_page)
                page.get_by_label("E-mail").fill("amnon@acme.com")
                page.get_by_label("Password").fill(PASSWORD)
                page.get_by_role("button", name="Log in").click()
            else:
                page.goto(link.group(1))
                page.get_by_label("New password").fill(PASSWORD)
                page.get_by_label("Repeat it").fill(PASSWORD)
                page.get_by_role("button", name="Set password and log in").click()
                page.goto(webhook_page)
            expect(page).to_have_url(webhook_page)
            delivered = page.locator("#activity .act.delivered")
            expect(delivered).to_have_count(1)
            expect(delivered).to_contain_text("John Doe")
            context.close()
    finally:
        steps.stop()
