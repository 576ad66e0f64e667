"""``crlhf classroom`` over HTTP (no browser needed): it prints the URL to hand out, lets
no one in without the token or the password, and its page links nothing on other hosts."""

import http.cookiejar
import re
import urllib.error
import urllib.parse
import urllib.request

from crlhf.store import LabelStore


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def status(url, opener=None):
    opener = opener or urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(url, timeout=120) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, ""


def _prepare(db):
    store = LabelStore(db)
    store.add_programs([{"program_id": "p0", "program": "a = 1\nb = 2\n"}])
    store.close()


def test_token_protects_the_app_and_the_url_is_printed(classroom_server):
    _prepare(classroom_server.db)
    out = classroom_server.start("--token", "s3cret-token", "--n-gold", "0")
    assert f"Students open: http://127.0.0.1:{classroom_server.port}/?token=s3cret-token" in out
    assert "1 programs (0 gold)" in out and "04_classroom_dashboard.ipynb" in out
    code, _ = status(classroom_server.url + "/")
    assert code in (302, 401, 403)
    code, _ = status(classroom_server.url + "/?token=wrong")
    assert code in (302, 401, 403)
    code, _ = status(classroom_server.url + "/api/kernels")
    assert code in (302, 401, 403)
    code, page = status(classroom_server.url + "/?token=s3cret-token")
    assert code == 200 and "from widgets.classroom import" not in page  # Voila strips the source
    links = re.findall(r"""(?:href|src)=["']([^"']+)""", page)
    assert links and [u for u in links if urllib.parse.urlparse(u).netloc] == []  # nothing from other hosts
    assert "cdn.jsdelivr.net" not in page  # Voila's lab template links Font Awesome from there


def test_password_login(classroom_server):
    _prepare(classroom_server.db)
    out = classroom_server.start("--password", "open sesame")
    assert re.search(rf"Students open: http://127.0.0.1:{classroom_server.port}/\s", out)
    assert "?token=" not in out and "password" in out
    code, _ = status(classroom_server.url + "/")
    assert code in (302, 401, 403)
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect)
    code, _ = status(classroom_server.url + "/login", opener)
    assert code == 200
    xsrf = next((c.value for c in jar if c.name == "_xsrf"), "")

    def login(password):
        data = urllib.parse.urlencode({"password": password, "_xsrf": xsrf}).encode()
        req = urllib.request.Request(classroom_server.url + "/login?next=%2F", data=data)
        try:
            with opener.open(req, timeout=60) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code

    assert login("wrong") in (200, 401, 403)  # the form again
    assert not any(c.name.startswith("username-") for c in jar)
    assert login("open sesame") == 302
    code, _ = status(classroom_server.url + "/", opener)
    assert code == 200
