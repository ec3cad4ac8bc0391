#!/usr/bin/python3
"""Drives headless Chromium through chromedriver (W3C WebDriver, plain
urllib) for tests/integration/73-console.sh: one step per call, the
WebDriver session kept by chromedriver between calls (its id in STATE).

    console_driver.py STATE start DRIVER_URL USER_DATA_DIR
    console_driver.py STATE register CONSOLE_URL NAME      -> policy lines
    console_driver.py STATE signin CONSOLE_URL NAME        -> "signed in"
    console_driver.py STATE queue-has CONSOLE_URL ID
    console_driver.py STATE open CONSOLE_URL ID            -> request page
    console_driver.py STATE envelope DECISION [REASON]     -> envelope JSON
    console_driver.py STATE approve                        -> status text
    console_driver.py STATE reject REASON                  -> status text
    console_driver.py STATE cancel REASON                  -> status text
    console_driver.py STATE wait-state STATE_NAME          -> on the page
    console_driver.py STATE cookie                         -> NAME=VALUE
    console_driver.py STATE screenshot FILE
    console_driver.py STATE quit

Every wait has a deadline (DEADLINE seconds); a step that fails prints
why on stderr and exits 1.  The virtual authenticator is the WebDriver
WebAuthn extension's (CTAP2, resident keys, user verification).
"""
import base64
import json
import sys
import time
import urllib.error
import urllib.request

DEADLINE = 20.0


class Fail(Exception):
    pass


def call(base, method, path, body=None, timeout=30):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read() or b"{}").get("value")
    except urllib.error.HTTPError as e:
        raise Fail("%s %s: HTTP %d: %s" % (method, path, e.code,
                                          e.read()[:500].decode(errors="replace")))


class Session:
    def __init__(self, state):
        with open(state) as f:
            s = json.load(f)
        self.base = s["driver"]
        self.sid = s["session"]

    def do(self, method, path, body=None, timeout=30):
        return call(self.base, method, "/session/%s%s" % (self.sid, path),
                    body, timeout)

    def js(self, script, *args):
        return self.do("POST", "/execute/sync",
                       {"script": script, "args": list(args)})

    def js_async(self, script, *args):
        return self.do("POST", "/execute/async",
                       {"script": script, "args": list(args)}, timeout=60)

    def go(self, url):
        self.do("POST", "/url", {"url": url})

    def until(self, what, script, *args):
        end = time.monotonic() + DEADLINE
        last = None
        while time.monotonic() < end:
            last = self.js(script, *args)
            if last:
                return last
            time.sleep(0.05)
        status = self.js("const s = document.getElementById('status');"
                         "return s ? s.textContent : '';")
        raise Fail("timed out waiting for %s (page status: %r)" %
                   (what, status))

    def click(self, elem_id):
        self.js("document.getElementById(arguments[0]).click();", elem_id)

    def type(self, elem_id, text):
        self.js("const e = document.getElementById(arguments[0]);"
                "e.value = arguments[1];", elem_id, text)

    def status(self):
        return self.js("return document.getElementById('status').textContent;")


VISIBLE = ("const e = document.getElementById(arguments[0]);"
           "return e !== null && !e.hidden && e.offsetParent !== null;")


def start(state, driver, user_data):
    caps = {"capabilities": {"alwaysMatch": {
        "browserName": "chrome",
        "acceptInsecureCerts": False,
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--no-first-run",
                     "--no-default-browser-check",
                     "--disable-background-networking",
                     "--disable-component-update", "--disable-sync",
                     "--window-size=1280,1400",
                     "--user-data-dir=" + user_data],
        },
    }}}
    v = call(driver, "POST", "/session", caps, timeout=60)
    sid = v["sessionId"]
    with open(state, "w") as f:
        json.dump({"driver": driver, "session": sid}, f)
    s = Session(state)
    s.do("POST", "/timeouts", {"script": 30000, "pageLoad": 30000})
    auth = s.do("POST", "/webauthn/authenticator", {
        "protocol": "ctap2", "transport": "usb", "hasResidentKey": True,
        "hasUserVerification": True, "isUserVerified": True})
    print(auth)


def register(s, url, name):
    s.go(url + "/#/register")
    s.until("the registration page", VISIBLE, "register-go")
    s.type("register-name", name)
    s.click("register-go")
    out = s.until("the policy lines",
                  "const e = document.getElementById('register-out');"
                  "return !e.hidden && e.textContent;")
    sys.stdout.write(out)


def signin(s, url, name):
    s.go(url + "/#/queue")
    s.until("the sign-in page", VISIBLE, "signin-go")
    s.type("signin-officer", name)
    s.click("signin-go")
    s.until("signed in as " + name,
            "const e = document.getElementById('who');"
            "return !e.hidden && e.textContent === 'Officer ' + arguments[0];",
            name)
    print("signed in")


def queue_has(s, url, rid):
    s.go(url + "/#/queue")
    s.until("request %s in the queue" % rid,
            "return document.querySelector("
            "'#queue-rows a[href=\"#/request/' + arguments[0] + '\"]') !== null;",
            rid)
    print("listed")


def open_request(s, url, rid):
    s.go(url + "/#/request/" + rid)
    s.until("the request page with its actions", VISIBLE, "rq-actions")
    print(s.js("return document.getElementById('rq-statement').textContent;"),
          end="")


def envelope(s, decision, reason):
    r = s.js_async("const done = arguments[arguments.length - 1];"
                   "sgConsole.signDecision(arguments[0], arguments[1])"
                   ".then((e) => done(JSON.stringify(e)),"
                   " (e) => done('ERROR ' + e));", decision, reason)
    if r.startswith("ERROR"):
        raise Fail(r)
    print(r)


def approve(s):
    s.click("rq-approve")
    print(s.until("the decision recorded",
                  "const t = document.getElementById('status').textContent;"
                  "return t.startsWith('Your decision is recorded') && t;"))


def reject(s, reason):
    s.type("rq-reason", reason)
    s.click("rq-reject")
    print(s.until("the rejection recorded",
                  "const t = document.getElementById('status').textContent;"
                  "return t.startsWith('Your decision is recorded') && t;"))


def cancel(s, reason):
    s.type("rq-reason", reason)
    s.click("rq-cancel")
    print(s.until("the cancel recorded",
                  "const t = document.getElementById('status').textContent;"
                  "return (t === 'The request is cancelled.' ||"
                  " t === 'The request is now cancelled.') && t;"))


def wait_state(s, name):
    s.until("the page to show " + name,
            "return document.getElementById('rq-state').textContent"
            " === arguments[0];", name)
    print(name)


def cookie(s):
    for c in s.do("GET", "/cookie"):
        if c["name"].startswith("__Host-"):
            print("%s=%s" % (c["name"], c["value"]))
            return
    raise Fail("no session cookie")


def screenshot(s, path):
    png = base64.b64decode(s.do("GET", "/screenshot"))
    with open(path, "wb") as f:
        f.write(png)


def main(argv):
    state, cmd, args = argv[1], argv[2], argv[3:]
    if cmd == "start":
        return start(state, *args)
    s = Session(state)
    if cmd == "quit":
        return s.do("DELETE", "")
    steps = {"register": register, "signin": signin, "queue-has": queue_has,
             "open": open_request, "approve": approve,
             "wait-state": wait_state, "cookie": cookie, "cancel": cancel,
             "reject": reject,
             "screenshot": screenshot}
    if cmd == "envelope":
        return envelope(s, args[0], args[1] if len(args) > 1 else "")
    if cmd not in steps:
        raise Fail("unknown step " + cmd)
    return steps[cmd](s, *args)


if __name__ == "__main__":
    try:
        main(sys.argv)
    except (Fail, urllib.error.URLError, OSError, KeyError) as e:
        print("console_driver: %s: %s" % (sys.argv[2], e), file=sys.stderr)
        sys.exit(1)
