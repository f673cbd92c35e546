"""The dashboard over HTTP: signing in, CSRF, escaping, workspaces, filters, publishing, prices."""

from __future__ import annotations

import html
import re
import time

import pytest
from yarl import URL

from ._dash import OTHER_KEY, Visitor, chat

pytestmark = pytest.mark.anyio

XSS = "<script>alert('x')</script>"


async def test_a_page_asked_for_without_signing_in_redirects_to_the_sign_in_form(
    visitor: Visitor,
) -> None:
    async with visitor.client.get("/dashboard/requests?tag=a", allow_redirects=False) as answer:
        assert answer.status == 303
        location = URL(answer.headers["Location"])
    assert location.path == "/dashboard/signin"
    assert location.query["next"] == "/dashboard/requests?tag=a"


async def test_the_root_and_the_bare_prefix_lead_to_the_dashboard(visitor: Visitor) -> None:
    for path in ("/", "/dashboard"):
        async with visitor.client.get(path, allow_redirects=False) as answer:
            assert answer.status == 302
            assert answer.headers["Location"] == "/dashboard/"


async def test_signing_in_sets_an_http_only_same_site_strict_session_cookie(
    visitor: Visitor,
) -> None:
    _, page = await visitor.get("/dashboard/signin")
    token = re.search(r'name="signin_token" value="([^"]+)"', page)
    assert token is not None
    async with visitor.client.post(
        "/dashboard/signin",
        data={"signin_token": token.group(1), "api_key": "pl_test_dashboard_key", "next": ""},
        allow_redirects=False,
    ) as answer:
        assert answer.status == 303
        assert answer.headers["Location"] == "/dashboard/"
        cookie = next(
            v for k, v in answer.headers.items() if k == "Set-Cookie" and "promptrun_session" in v
        )
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Path=/dashboard" in cookie
    assert "pl_test_dashboard_key" not in cookie


async def test_an_unknown_api_key_is_refused_and_no_session_starts(visitor: Visitor) -> None:
    status, page = await visitor.sign_in("pl_not_a_key")
    assert status == 401
    assert "Unknown API key" in page
    status, page = await visitor.get("/dashboard/requests")
    assert "Sign in to promptrun" in page


async def test_a_sign_in_post_without_the_form_token_is_rejected(visitor: Visitor) -> None:
    status, page = await visitor.post(
        "/dashboard/signin", {"api_key": "pl_test_dashboard_key"}, csrf=False
    )
    assert status == 403
    assert "expired" in page


async def test_a_post_without_the_csrf_token_is_rejected_and_changes_nothing(
    signed_in: Visitor,
) -> None:
    form = {"name": "sneaky", "prompt_template": '{"type": "chat", "messages": []}'}
    status, page = await signed_in.post("/dashboard/publish", form, csrf=False)
    assert status == 403
    assert "security token" in page
    status, _ = await signed_in.get("/dashboard/prompt?name=sneaky")
    assert status == 404


async def test_a_csrf_token_from_another_session_is_rejected(signed_in: Visitor) -> None:
    stolen = signed_in.csrf
    await signed_in.post("/dashboard/signout", {})
    await signed_in.sign_in()
    assert signed_in.csrf != stolen
    signed_in.csrf = stolen
    status, _ = await signed_in.post(
        "/dashboard/prices", {"model": "m", "input_per_million": "1", "output_per_million": "2"}
    )
    assert status == 403


async def test_a_post_from_another_origin_is_rejected_even_with_the_token(
    signed_in: Visitor,
) -> None:
    async with signed_in.client.post(
        "/dashboard/prices",
        data={
            "csrf_token": signed_in.csrf,
            "model": "m",
            "input_per_million": "1",
            "output_per_million": "1",
        },
        headers={"Origin": "http://evil.example"},
    ) as answer:
        assert answer.status == 403


async def test_signing_out_ends_the_session_on_the_server(signed_in: Visitor) -> None:
    cookie = signed_in.client.session.cookie_jar.filter_cookies(
        signed_in.client.make_url("/dashboard/")
    )["promptrun_session"].value
    status, page = await signed_in.post("/dashboard/signout", {})
    assert status == 200
    assert "Sign in to promptrun" in page
    async with signed_in.client.get(
        "/dashboard/requests",
        headers={"Cookie": f"promptrun_session={cookie}"},
        allow_redirects=False,
    ) as answer:
        assert answer.status == 303


async def test_after_sign_in_the_browser_goes_only_to_dashboard_pages(visitor: Visitor) -> None:
    for target, expected in (
        ("https://evil.example/", "/dashboard/"),
        ("//evil.example/dashboard", "/dashboard/"),
        ("/dashboard/prices", "/dashboard/prices"),
    ):
        _, page = await visitor.get("/dashboard/signin")
        token = re.search(r'name="signin_token" value="([^"]+)"', page)
        assert token is not None
        async with visitor.client.post(
            "/dashboard/signin",
            data={
                "signin_token": token.group(1),
                "api_key": "pl_test_dashboard_key",
                "next": target,
            },
            allow_redirects=False,
        ) as answer:
            assert answer.headers["Location"] == expected
        await visitor.get("/dashboard/")
        await visitor.post("/dashboard/signout", {})


async def test_pages_allow_only_their_own_inline_style_and_script(signed_in: Visitor) -> None:
    async with signed_in.client.get("/dashboard/requests") as answer:
        policy = answer.headers["Content-Security-Policy"]
        page = await answer.text()
        assert answer.headers["X-Frame-Options"] == "DENY"
        assert answer.headers["Cache-Control"] == "no-store"
    nonce = re.search(r"'nonce-([^']+)'", policy)
    assert nonce is not None
    assert "default-src 'none'" in policy
    assert f'<script nonce="{nonce.group(1)}">' in page
    assert f'<style nonce="{nonce.group(1)}">' in page
    assert "http://" not in page and "https://" not in page  # nothing fetched from elsewhere


async def test_markup_in_a_prompt_a_tag_and_an_output_is_shown_as_text(
    signed_in: Visitor,
) -> None:
    await signed_in.publish(XSS, f"Hello {XSS}")
    request_id = await signed_in.log(
        prompt_name=XSS,
        tags=[XSS],
        output=chat(f"Sure: {XSS}", role="assistant"),
        metadata={"note": XSS},
    )
    pages = [
        "/dashboard/",
        "/dashboard/requests",
        f"/dashboard/requests/{request_id}",
        "/dashboard/prompts",
        "/dashboard/prompt?name=%3Cscript%3Ealert(%27x%27)%3C%2Fscript%3E",
        "/dashboard/publish?name=%3Cscript%3Ealert(%27x%27)%3C%2Fscript%3E",
    ]
    for path in pages:
        status, page = await signed_in.get(path)
        assert status == 200, path
        assert "<script>alert" not in page, path
    _, page = await signed_in.get(f"/dashboard/requests/{request_id}")
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page


async def test_a_workspace_sees_only_its_own_requests_and_templates(signed_in: Visitor) -> None:
    await signed_in.publish("mine", "hello")
    mine = await signed_in.log(prompt_name="mine", tags=["mine"])
    theirs = await signed_in.log(tags=["theirs"], key=OTHER_KEY)
    _, page = await signed_in.get("/dashboard/requests")
    assert f"/dashboard/requests/{mine}" in page
    assert ">theirs<" not in page
    status, _ = await signed_in.get(f"/dashboard/requests/{theirs}")
    assert theirs != mine and status == 404
    await signed_in.post("/dashboard/signout", {})
    await signed_in.sign_in(OTHER_KEY)
    _, page = await signed_in.get("/dashboard/prompts")
    assert "mine" not in page
    assert "workspace <b>other</b>" in page


async def test_filters_narrow_the_request_list(signed_in: Visitor) -> None:
    await signed_in.publish("greet", "hi")
    await signed_in.publish("greet", "hello")
    now = time.time()
    ids = {
        "old": await signed_in.log(request_start_time=now - 7200, request_end_time=now - 7199),
        "tagged": await signed_in.log(tags=["beta"]),
        "error": await signed_in.log(status="ERROR", error_message="boom"),
        "claude": await signed_in.log(provider="anthropic", model="claude-haiku-4-5"),
        "v2": await signed_in.log(prompt_name="greet", prompt_version_number=2),
        "v1": await signed_in.log(prompt_name="greet", prompt_version_number=1),
        "text": await signed_in.log(output=chat("a 100% unusual_answer", role="assistant")),
    }

    async def shown(query: str) -> set[str]:
        status, page = await signed_in.get(f"/dashboard/requests?{query}")
        assert status == 200, page
        found = set(re.findall(r'<a href="/dashboard/requests/(\d+)">', page))
        return {name for name, i in ids.items() if str(i) in found}

    assert await shown("tag=beta") == {"tagged"}
    assert await shown("status=ERROR") == {"error"}
    assert await shown("provider=anthropic") == {"claude"}
    assert await shown("model=claude-haiku-4-5") == {"claude"}
    assert await shown("prompt=greet") == {"v1", "v2"}
    assert await shown("prompt=greet&version=2") == {"v2"}
    assert await shown("q=unusual_answer") == {"text"}
    assert await shown("q=100%25") == {"text"}  # % is a character here, not a wildcard
    assert await shown("q=CAPITAL+of+france") == set(ids)
    cutoff = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(now - 3600))
    assert await shown(f"until={cutoff}") == {"old"}
    assert "old" not in await shown(f"since={cutoff}")


async def test_a_bad_filter_value_says_what_is_wrong(signed_in: Visitor) -> None:
    status, page = await signed_in.get("/dashboard/requests?since=yesterday")
    assert status == 400
    assert "is not a time" in page


async def test_the_request_list_is_newest_first_in_pages_of_fifty_linked_older_and_newer(
    signed_in: Visitor,
) -> None:
    ids = [await signed_in.log(tags=[f"n{i}"]) for i in range(55)]
    _, first = await signed_in.get("/dashboard/requests")
    shown = [int(x) for x in re.findall(r'<a href="/dashboard/requests/(\d+)">', first)]
    assert shown == sorted(ids, reverse=True)[:50]
    assert 'id="previous"' not in first and "55 requests." in first
    older = re.search(r'<a id="next" href="([^"]+)">Older', first)
    assert older is not None
    _, second = await signed_in.get(html.unescape(older[1]))
    shown = [int(x) for x in re.findall(r'<a href="/dashboard/requests/(\d+)">', second)]
    assert shown == sorted(ids, reverse=True)[50:]
    assert 'id="next"' not in second
    newer = re.search(r'<a id="previous" href="([^"]+)">← Newer', second)
    assert newer is not None
    _, back = await signed_in.get(html.unescape(newer[1]))
    assert re.findall(r'<a href="/dashboard/requests/(\d+)">', back) == re.findall(
        r'<a href="/dashboard/requests/(\d+)">', first
    )


async def test_a_request_page_shows_everything_logged_about_it(signed_in: Visitor) -> None:
    await signed_in.publish("weather", "What is the weather in {city}?")
    group = (await signed_in.api("/create-group", {}))["id"]
    output = {
        "type": "chat",
        "messages": [
            {
                "role": "assistant",
                "content": [{"type": "text", "text": "Let me look that up."}],
                "tool_calls": [
                    {
                        "id": "call_7",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    }
                ],
            }
        ],
    }
    request_id = await signed_in.log(
        prompt_name="weather",
        prompt_version_number=1,
        output=output,
        price=0.42,
        metadata={"customer": "acme"},
        score=87,
        input_tokens=1234,
        output_tokens=56,
        prompt_input_variables={"city": "Paris"},
    )
    await signed_in.api("/track-group", {"request_id": request_id, "group_id": group})
    status, page = await signed_in.get(f"/dashboard/requests/{request_id}")
    assert status == 200
    for expected in (
        "What is the capital of France?",
        "Let me look that up.",
        "get_weather",
        "&#34;city&#34;: &#34;Paris&#34;",
        "1,234 in, 56 out",
        "250 ms",
        "$0.42",
        "customer",
        "acme",
        f"group {group}",
        'href="/dashboard/prompt?name=weather&amp;version=1"',
    ):
        assert expected in page, expected
    assert re.search(r"<dt>default</dt><dd>87</dd>", page)


async def test_cost_is_the_logged_price_else_tokens_times_the_price_table(
    signed_in: Visitor,
) -> None:
    priced = await signed_in.log(price=0.5)
    estimated = await signed_in.log(model="gpt-4o-mini-2024-07-18")  # 1000 in, 500 out
    unknown = await signed_in.log(model="homegrown-7b")
    _, page = await signed_in.get(f"/dashboard/requests/{priced}")
    assert "$0.50" in page and "from the price table" not in page
    _, page = await signed_in.get(f"/dashboard/requests/{estimated}")
    assert "$0.00045 <span" in page  # 1000 * 0.15/1M + 500 * 0.60/1M
    _, page = await signed_in.get(f"/dashboard/requests/{unknown}")
    assert "no price for this model" in page


async def test_a_price_set_on_the_prices_page_reprices_requests_and_can_be_reset(
    signed_in: Visitor,
) -> None:
    request_id = await signed_in.log(model="homegrown-7b")
    status, page = await signed_in.post(
        "/dashboard/prices",
        {"model": "homegrown-7b", "input_per_million": "2", "output_per_million": "4"},
    )
    assert status == 200
    assert "Saved the price of homegrown-7b" in page
    _, page = await signed_in.get(f"/dashboard/requests/{request_id}")
    assert "$0.004 <span" in page  # 1000 * 2/1M + 500 * 4/1M
    await signed_in.post("/dashboard/prices/reset", {"model": "homegrown-7b"})
    _, page = await signed_in.get(f"/dashboard/requests/{request_id}")
    assert "no price for this model" in page


async def test_a_bad_price_is_refused_with_a_reason(signed_in: Visitor) -> None:
    status, page = await signed_in.post(
        "/dashboard/prices", {"model": "x", "input_per_million": "-1", "output_per_million": "1"}
    )
    assert status == 400
    assert "between 0 and" in page


async def test_publishing_from_the_dashboard_adds_a_version_with_labels(
    signed_in: Visitor,
) -> None:
    await signed_in.publish("summarize", "Summarize {text}")
    template = '{"type": "chat", "messages": [{"role": "user", "content": [{"type": "text", "text": "TL;DR {text}"}]}]}'
    status, page = await signed_in.post(
        "/dashboard/publish",
        {
            "name": "summarize",
            "prompt_template": template,
            "metadata": "",
            "commit_message": "shorter",
            "release_labels": "prod, beta",
        },
    )
    assert status == 200
    assert "Published version 2" in page
    fetched = await signed_in.api("/prompt-templates/summarize", {"label": "prod"})
    assert fetched["version"] == 2
    assert fetched["commit_message"] == "shorter"
    assert fetched["prompt_template"]["messages"][0]["content"][0]["text"] == "TL;DR {text}"


async def test_publishing_bad_json_keeps_what_was_typed_and_says_why(signed_in: Visitor) -> None:
    status, page = await signed_in.post(
        "/dashboard/publish",
        {
            "name": "broken",
            "prompt_template": '{"type": "chat", "messages": [',
            "metadata": "",
            "commit_message": "oops",
            "release_labels": "",
        },
    )
    assert status == 400
    assert "not valid JSON" in page
    assert "{&#34;type&#34;: &#34;chat&#34;, &#34;messages&#34;: [" in page
    status, page = await signed_in.post(
        "/dashboard/publish",
        {
            "name": "broken",
            "prompt_template": '{"type": "chat", "messages": [{"role": "wizard"}]}',
            "metadata": "",
            "commit_message": "",
            "release_labels": "",
        },
    )
    assert status == 400
    assert "role" in page


async def test_a_diff_shows_the_removed_and_added_lines(signed_in: Visitor) -> None:
    await signed_in.publish("greet", "Hi {name}", commit_message="first")
    await signed_in.publish("greet", "Hello {name}", commit_message="warmer")
    status, page = await signed_in.get("/dashboard/prompt/diff?name=greet&a=1&b=2")
    assert status == 200
    removed = re.search(r'<tr class="removed">.*?</tr>', page, re.S)
    added = re.search(r'<tr class="added">.*?</tr>', page, re.S)
    assert removed and "Hi {name}" in removed.group(0)
    assert added and "Hello {name}" in added.group(0)
    assert "warmer" in page


async def test_the_template_page_lists_versions_with_messages_and_labels(
    signed_in: Visitor,
) -> None:
    await signed_in.publish("greet", "Hi {name}", commit_message="first")
    await signed_in.api(
        "/rest/prompt-templates",
        {
            "prompt_template": {"prompt_name": "greet"},
            "prompt_version": {"prompt_template": chat("Hello {name}"), "commit_message": "second"},
            "release_labels": ["prod"],
        },
    )
    _, page = await signed_in.get("/dashboard/prompt?name=greet")
    assert "version 2" in page and "second" in page and "first" in page
    assert '<span class="pill label">prod</span>' in page
    assert "Hello {name}" in page
    _, page = await signed_in.get("/dashboard/prompt?name=greet&version=1")
    assert "Hi {name}" in page


async def test_the_overview_charts_the_requests_errors_and_cost(signed_in: Visitor) -> None:
    for status in ("SUCCESS", "SUCCESS", "ERROR"):
        await signed_in.log(status=status, model="gpt-4o")
    status, page = await signed_in.get("/dashboard/?range=1h")
    assert status == 200
    assert "<b>3</b><span>requests</span>" in page
    assert "33.3%" in page
    assert re.search(r"<title>[^<]*: 3 requests</title>", page)
    # 3 x (1000 in at $2.50/1M + 500 out at $10/1M)
    assert "<title>gpt-4o: $0.0225</title>" in page


async def test_an_unknown_dashboard_page_is_an_html_404(signed_in: Visitor) -> None:
    async with signed_in.client.get("/dashboard/nowhere") as answer:
        assert answer.status == 404
        assert answer.content_type == "text/html"


@pytest.mark.parametrize(
    "path",
    [
        "/dashboard/requests?after=%C2%B2",
        "/dashboard/requests?after=f1.5~99999999999999999999",
        "/dashboard/requests?before=x1~2",
        "/dashboard/requests?after=f1~2&before=f1~3",
        "/dashboard/requests?after=fnot-a-number~2",
        "/dashboard/requests?sort=price",
        "/dashboard/requests?order=up",
        "/dashboard/requests?meta_value=x",
        "/dashboard/requests?version=-1",
        "/dashboard/requests/prompts?range=1y",
        "/dashboard/requests/export.csv?after=%00",
        "/dashboard/requests/%C2%B2",
        "/dashboard/requests/99999999999999999999",
        "/dashboard/prompts?page=0",
        "/dashboard/prompt?name=x&version=%C2%B2",
        "/dashboard/prompt?name=nope",
        "/dashboard/prompt",
        "/dashboard/prompt/diff?name=nope",
        "/dashboard/?range=2y",
        "/dashboard/workflows?page=x",
        "/dashboard/workflow?name=x&version=99999999999999999999",
        "/dashboard/workflows/executions/99999999999999999999",
        "/dashboard/workflows/executions/%D9%A3",
    ],
)
async def test_a_hostile_address_gets_an_html_4xx_not_a_crash(
    signed_in: Visitor, path: str
) -> None:
    async with signed_in.client.get(path) as answer:
        assert 400 <= answer.status < 500, path
        assert answer.content_type == "text/html"


@pytest.mark.parametrize(("name", "says"), [("..", "dot segments"), ("a\nb", "control characters")])
async def test_publishing_a_name_no_client_could_fetch_is_refused_saying_why(
    signed_in: Visitor, name: str, says: str
) -> None:
    template = '{"type": "chat", "messages": []}'
    status, page = await signed_in.post(
        "/dashboard/publish",
        {"name": name, "prompt_template": template, "metadata": "", "commit_message": "",
         "release_labels": ""},
    )  # fmt: skip
    assert status == 400
    assert says in page
