"""The spec's run() section: what one call does, providers and keys, streaming, overrides,
the provider-specific schema notice, and run_workflow()."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

import aiohttp
import anthropic.types
import google.genai.types
import openai
import openai.types.chat
import pytest

import promptrun
from promptrun import PromptLayer

from .._registry_stub import chat_template, stub_registry
from ..pipeline.test_more_providers import service_account
from .conftest import ANTHROPIC_MODEL, OPENAI_MODEL, SpecServer, example

# -- "It fetches a prompt template from the Prompt Registry, executes it against your configured
#    LLM provider, and logs the result — all in one call."


def test_run_fetches_the_template_executes_it_on_the_provider_and_logs_the_result_in_one_call(
    spec_env: SpecServer,
) -> None:
    ns = example(
        """
        from promptrun import PromptLayer
        pl = PromptLayer()
        response = pl.run(prompt_name="your-prompt")
        """
    )
    response = ns["response"]
    assert isinstance(response["raw_response"], openai.types.chat.ChatCompletion)
    assert response["raw_response"].choices[0].message.content
    stored = spec_env.request(response["request_id"])  # logged before close() returned
    assert stored["prompt_name"] == "your-prompt"
    assert stored["status"] == "SUCCESS"
    last = stored["prompt_blueprint"]["prompt_template"]["messages"][-1]
    assert last["content"][0]["text"] == response["raw_response"].choices[0].message.content


# -- "Your LLM API keys (OpenAI, Anthropic, etc.) are never sent to our servers. All LLM requests
#    are made locally from your machine, PromptLayer just logs the request."


def test_llm_api_keys_are_never_sent_to_promptlayer_and_the_llm_request_is_made_locally(
    spec_env: SpecServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "sk-this-must-stay-on-this-machine"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    with stub_registry() as registry:  # PromptLayer's side; the provider stays the sandbox
        registry.publish("your-prompt", chat_template("Say hello.", model=OPENAI_MODEL))
        pl = PromptLayer(base_url=registry.base_url)
        response = pl.run(prompt_name="your-prompt")
        assert pl.flush(10)
        pl.close()
    assert response["raw_response"].choices[0].message.content  # the provider answered
    paths = {seen.path for seen in registry.seen}
    assert "/prompt-templates/your-prompt" in paths
    assert "/track-request" in paths  # PromptLayer just logs the request
    assert not any(p.startswith(("/v1/chat", "/chat")) for p in paths)
    for seen in registry.seen:
        assert secret not in seen.body.decode()
        assert not any(secret in value for value in seen.headers.values())


# -- "The run() method works with any provider configured in your prompt template — OpenAI,
#    Anthropic, Google, and more."

NATIVE: dict[str, tuple[str, type]] = {
    "your-prompt": ("openai", openai.types.chat.ChatCompletion),
    "claude-prompt": ("anthropic", anthropic.types.Message),
    "gemini-prompt": ("google", google.genai.types.GenerateContentResponse),
}


@pytest.mark.parametrize("prompt_name", list(NATIVE))
def test_run_works_with_the_provider_configured_in_the_template_openai_anthropic_google(
    spec_env: SpecServer, prompt_name: str
) -> None:
    provider, response_type = NATIVE[prompt_name]
    with PromptLayer() as pl:
        response = pl.run(prompt_name=prompt_name)
    assert isinstance(response["raw_response"], response_type)
    assert spec_env.request(response["request_id"])["provider"] == provider


MORE: list[Any] = [
    pytest.param("openai.azure", "gpt-4o-mini", id="openai.azure"),
    pytest.param("anthropic.bedrock", "anthropic.claude-haiku-4-5", id="anthropic.bedrock"),
    pytest.param("amazon.bedrock", "anthropic.claude-haiku-4-5", id="amazon.bedrock"),
    pytest.param("vertexai", "gemini-2.5-flash", id="vertexai"),
    pytest.param("mistral", "mistral-small-latest", id="mistral"),
    pytest.param("openrouter", "openai/gpt-4o-mini", id="openrouter"),
]  # fmt: skip


@pytest.mark.parametrize(("provider", "model"), MORE)
def test_run_works_with_the_and_more_providers_plain_and_streamed(
    spec_env: SpecServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    provider: str,
    model: str,
) -> None:
    # Vertex AI reads Application Default Credentials: a service account whose token endpoint
    # is the sandbox, so the whole exchange stays offline.
    adc = tmp_path / "adc.json"
    adc.write_text(json.dumps(service_account(spec_env.srv.base_url + "/sandbox/vertex/token")))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(adc))
    fake = {
        "AZURE_OPENAI_API_KEY": "azure-spec-secret", "OPENAI_API_VERSION": "2024-10-21",
        "AWS_ACCESS_KEY_ID": "AKIDSPECEXAMPLE", "AWS_SECRET_ACCESS_KEY": "spec-secret",
        "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
        "GOOGLE_CLOUD_PROJECT": "spec-project", "GOOGLE_CLOUD_LOCATION": "us-central1",
        "MISTRAL_API_KEY": "mistral-spec-secret", "OPENROUTER_API_KEY": "openrouter-spec-secret",
    }  # fmt: skip
    for name, value in fake.items():
        monkeypatch.setenv(name, value)
    sandbox = {provider: spec_env.sandbox_url(provider)}
    with PromptLayer(provider_base_urls=sandbox) as pl:
        response = pl.run(prompt_name="your-prompt", provider=provider, model=model)
        items = list(pl.run(prompt_name="your-prompt", provider=provider, model=model,
                            stream=True))  # fmt: skip
    assert response["raw_response"] is not None
    assert items[-1]["request_id"] is not None
    for rid in (response["request_id"], items[-1]["request_id"]):
        stored = spec_env.request(rid)
        assert (stored["provider"], stored["status"]) == (provider, "SUCCESS")


# -- "After making your first few requests, you should be able to see them in the PromptLayer
#    dashboard!"


@pytest.mark.anyio
async def test_requests_made_with_run_are_seen_in_the_dashboard(spec_env: SpecServer) -> None:
    async with promptrun.AsyncPromptLayer() as pl:
        response = await pl.run(prompt_name="TestPrompt",
                                input_variables={"variable1": "tea", "variable2": "cake"})  # fmt: skip
    dashboard = spec_env.base_url + "/dashboard"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        async with session.get(dashboard + "/signin") as page:
            token = re.search(r'name="signin_token" value="([^"]+)"', await page.text())
        assert token is not None
        form = {"signin_token": token.group(1), "api_key": spec_env.api_key, "next": "/dashboard/"}
        async with session.post(dashboard + "/signin", data=form) as signed_in:
            assert signed_in.status == 200
        async with session.get(dashboard + "/requests") as listing:
            assert listing.status == 200
            html = await listing.text()
    stored = spec_env.request(response["request_id"])
    assert "TestPrompt" in html
    assert f"/dashboard/requests/{stored['id']}" in html


# -- "you must set its corresponding API key as an environment variable ... The PromptLayer
#    client does not support passing these keys directly in code. If the relevant environment
#    variables are not set, any requests to those LLM providers will fail."


@pytest.mark.parametrize("argument", ["openai_api_key", "anthropic_api_key", "api_keys"])
def test_the_client_does_not_take_provider_keys_in_code(
    spec_env: SpecServer, argument: str
) -> None:
    with pytest.raises(TypeError, match=argument):
        PromptLayer(**{argument: "sk-in-code"})


def test_the_provider_key_comes_from_the_environment(
    spec_env: SpecServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-from-the-environment")
    with PromptLayer() as pl:
        response = pl.run(prompt_name="claude-prompt")
    assert isinstance(response["raw_response"], anthropic.types.Message)


@pytest.mark.parametrize(
    ("prompt_name", "variables", "error"),
    [
        ("your-prompt", ["OPENAI_API_KEY"], openai.OpenAIError),
        ("claude-prompt", ["ANTHROPIC_API_KEY"], TypeError),
        ("gemini-prompt", ["GEMINI_API_KEY", "GOOGLE_API_KEY"], ValueError),
    ],
    ids=["openai", "anthropic", "google"],
)
def test_without_the_providers_key_in_the_environment_requests_to_it_fail(
    spec_env: SpecServer,
    monkeypatch: pytest.MonkeyPatch,
    prompt_name: str,
    variables: list[str],
    error: type[Exception],
) -> None:
    for name in variables:
        monkeypatch.delenv(name, raising=False)
    with PromptLayer() as pl, pytest.raises(error):
        pl.run(prompt_name=prompt_name)


# -- "stream (bool, default=False): Whether to stream the response."


def test_stream_defaults_to_false_so_run_returns_one_complete_result(
    spec_env: SpecServer,
) -> None:
    with PromptLayer() as pl:
        response = pl.run(prompt_name="your-prompt")
    assert isinstance(response, dict)
    assert set(response) == {"request_id", "raw_response", "prompt_blueprint"}
    assert response["request_id"] is not None


# -- "provider (str, optional): ... useful if you want to override the provider specified in the
#    prompt template." / "model (str, optional): ... override the model"


def test_provider_and_model_override_the_ones_in_the_prompt_template(
    spec_env: SpecServer,
) -> None:
    with PromptLayer() as pl:
        response = pl.run(prompt_name="your-prompt", provider="anthropic", model=ANTHROPIC_MODEL)
    assert isinstance(response["raw_response"], anthropic.types.Message)
    assert response["raw_response"].model == ANTHROPIC_MODEL
    stored = spec_env.request(response["request_id"])
    assert (stored["provider"], stored["model"]) == ("anthropic", ANTHROPIC_MODEL)


def test_model_alone_overrides_the_model_on_the_templates_provider(spec_env: SpecServer) -> None:
    with PromptLayer() as pl:
        response = pl.run(prompt_name="your-prompt", model="gpt-4o")
    assert response["raw_response"].model == "gpt-4o"


# -- The Python SDK override example; "Make sure to set both model and provider in order to run
#    the request against correct LLM provider with correct parameters."


def test_python_sdk_example_with_both_provider_and_model_runs_on_that_provider_and_model(
    spec_env: SpecServer,
) -> None:
    ns = example(
        """
        from promptrun import PromptLayer
        pl = PromptLayer()
        response = pl.run(
            prompt_name="your-prompt",
            provider="openai",  # or "anthropic", "google", etc.
            model="gpt-4",  # or "claude-2", "gemini-1.5-pro", etc.
        )
        """
    )
    response = ns["response"]
    assert isinstance(response["raw_response"], openai.types.chat.ChatCompletion)
    assert response["raw_response"].model == "gpt-4"
    assert response["prompt_blueprint"]["metadata"]["model"]["name"] == "gpt-4"


# -- "PromptLayer will automatically return the correct llm_kwargs for the specified provider and
#    model with default values for the parameters corresponding to the provider and model."


def test_an_override_returns_llm_kwargs_for_that_provider_and_model_with_its_defaults(
    spec_env: SpecServer,
) -> None:
    with PromptLayer() as pl:
        template = pl.templates.get(
            "your-prompt", {"provider": "anthropic", "model": ANTHROPIC_MODEL}
        )
    kwargs = template["llm_kwargs"]
    assert kwargs["model"] == ANTHROPIC_MODEL
    assert kwargs["system"] == "You are terse."  # Anthropic's shape, not OpenAI's
    assert kwargs["max_tokens"] > 0  # the default Anthropic requires
    assert template["metadata"]["model"]["provider"] == "anthropic"


# -- The streaming example; "each chunk includes both the raw streaming response and the
#    progressively built prompt_blueprint ... The request_id is only included in the final
#    chunk."

STREAM_EXAMPLE = """
from promptrun import PromptLayer
pl = PromptLayer()  # glue: the spec's fragment uses a client named pl
for chunk in pl.run(prompt_name="your-prompt", stream=True):
    # Access raw streaming response
    print(chunk["raw_response"])
    # Access progressively built prompt blueprint
    if chunk["prompt_blueprint"]:
        current_response = chunk["prompt_blueprint"]["prompt_template"]["messages"][-1]
        if current_response.get("content"):
            print(f"Current response: {current_response['content']}")
"""


def test_streaming_example_prints_each_raw_chunk_and_the_response_built_so_far(
    spec_env: SpecServer, capsys: pytest.CaptureFixture[str]
) -> None:
    example(STREAM_EXAMPLE)
    out = capsys.readouterr().out.splitlines()
    assert any(line.startswith("ChatCompletionChunk(") for line in out)
    built = [line for line in out if line.startswith("Current response: ")]
    assert built
    # Progressive: each printed response extends the one before it.
    texts = [re.findall(r"'text': '([^']*)'", line) for line in built]
    joined = ["".join(t) for t in texts]
    assert all(b.startswith(a) for a, b in itertools.pairwise(joined))
    assert joined[-1].startswith("Sandbox reply")


def test_each_streamed_chunk_has_the_raw_response_and_a_progressively_built_blueprint(
    spec_env: SpecServer,
) -> None:
    with PromptLayer() as pl:
        chunks = list(pl.run(prompt_name="your-prompt", stream=True))
    assert len(chunks) > 2
    texts = []
    for chunk in chunks:
        assert isinstance(chunk["raw_response"], openai.types.chat.ChatCompletionChunk)
        last = chunk["prompt_blueprint"]["prompt_template"]["messages"][-1]
        assert last["role"] == "assistant"
        texts.append("".join(part["text"] for part in last["content"]))
    assert all(b.startswith(a) for a, b in itertools.pairwise(texts))
    assert texts[-1]


def test_the_request_id_is_only_included_in_the_final_chunk(spec_env: SpecServer) -> None:
    with PromptLayer() as pl:
        chunks = list(pl.run(prompt_name="your-prompt", stream=True))
    assert [c["request_id"] is None for c in chunks] == [True] * (len(chunks) - 1) + [False]
    assert spec_env.request(chunks[-1]["request_id"])["status"] == "SUCCESS"


# -- "Provider-Specific Schema Notice: The llm_kwargs and raw_response objects have
#    provider-specific structures ... PromptLayer passes through the native format required by
#    each provider. For stable, provider-agnostic prompt data, use
#    prompt_blueprint.prompt_template"


@pytest.mark.parametrize("prompt_name", list(NATIVE))
def test_raw_response_and_llm_kwargs_are_in_the_providers_native_format(
    spec_env: SpecServer, prompt_name: str
) -> None:
    provider, response_type = NATIVE[prompt_name]
    with PromptLayer() as pl:
        response = pl.run(prompt_name=prompt_name)
        kwargs = pl.templates.get(prompt_name)["llm_kwargs"]
    assert type(response["raw_response"]) is response_type
    native_keys = {"openai": "messages", "anthropic": "messages", "google": "contents"}
    assert native_keys[provider] in kwargs or "history" in kwargs


def test_prompt_blueprint_prompt_template_has_one_shape_whatever_the_provider(
    spec_env: SpecServer,
) -> None:
    shapes = set()
    with PromptLayer() as pl:
        for prompt_name in NATIVE:
            template = pl.run(prompt_name=prompt_name)["prompt_blueprint"]["prompt_template"]
            last = template["messages"][-1]
            assert last["role"] == "assistant"
            assert last["content"][0]["type"] == "text"
            assert last["content"][0]["text"]
            shapes.add((template["type"], tuple(sorted(last)), tuple(sorted(last["content"][0]))))
    assert len(shapes) == 1


# -- "By default, run_workflow() returns the final output node's value. When
#    return_all_outputs=True, it returns a dictionary keyed by node name, including each node's
#    status, value, errors, and whether the node is an output node."


def test_run_workflow_returns_the_final_output_nodes_value_by_default(
    spec_env: SpecServer,
) -> None:
    with PromptLayer() as pl:
        assert pl.run_workflow("spec-workflow", input_variables={"text": "hi there"}) == 8


def test_run_workflow_with_return_all_outputs_returns_each_node_by_name(
    spec_env: SpecServer,
) -> None:
    with PromptLayer() as pl:
        nodes = pl.run_workflow(
            "spec-workflow", input_variables={"text": "hi there"}, return_all_outputs=True
        )
    assert set(nodes) == {"shout", "count"}
    for node in nodes.values():
        assert {"status", "value", "error_message", "raw_error_message", "is_output_node"} <= set(
            node
        )
    assert (nodes["shout"]["status"], nodes["shout"]["value"]) == ("SUCCESS", "HI THERE")
    assert (nodes["shout"]["is_output_node"], nodes["count"]["is_output_node"]) == (False, True)


def test_a_workflow_that_fails_reports_the_nodes_error(spec_env: SpecServer) -> None:
    with PromptLayer() as pl:
        nodes = pl.run_workflow(
            "spec-workflow", input_variables={"text": 42}, return_all_outputs=True
        )
    assert nodes["shout"]["status"] != "SUCCESS"
    assert nodes["shout"]["error_message"]
