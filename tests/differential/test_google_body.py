"""The Gemini request body built natively is the one the installed google-genai SDK builds.

The reference is the SDK's own request pipeline, run without a network: its argument models
(``_GenerateContentParameters``), its ``_GenerateContentParameters_to_mldev`` converter and its
``convert_to_dict`` / ``encode_unserializable_types`` dump, as ``AsyncModels._generate_content``
runs them. Shapes the native builder does not map must say so (None), never differ.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from google import genai
from google.genai import _common, models, types

from promptrun.blueprint import google_call_args
from promptrun.pipeline.providers._google_body import Enums, model_path, request_body
from promptrun.pipeline.providers._google_native import endpoint

SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
_CLIENT = genai.Client(api_key="k", http_options=types.HttpOptions(base_url="http://127.0.0.1:9"))


def sdk_body(kwargs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    model, contents, config = google_call_args(copy.deepcopy(kwargs))
    parsed = types.GenerateContentConfig(**config) if config else None
    params = types._GenerateContentParameters(model=model, contents=contents, config=parsed)
    request = models._GenerateContentParameters_to_mldev(_CLIENT._api_client, params, None, params)
    request.pop("config", None)
    url = request.pop("_url")["model"]
    return url, _common.encode_unserializable_types(_common.convert_to_dict(request))


def native_body(kwargs: dict[str, Any]) -> tuple[str | None, dict[str, Any] | None]:
    model, contents, config = google_call_args(copy.deepcopy(kwargs))
    return model_path(model), request_body(contents, config, Enums())


def user(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"role": "user", "parts": list(parts)}


def kw(*contents: dict[str, Any], **config: Any) -> dict[str, Any]:
    return {"model": "gemini-2.5-flash", "history": list(contents), "generation_config": config}


HI = {"text": "hi"}
MAPPED: dict[str, dict[str, Any]] = {
    "plain": kw(user(HI)),
    "completion": {"model": "models/gemini-2.5-pro", "contents": [user(HI)]},
    "parameters": kw(
        user(HI), temperature=1, top_p=0.9, top_k=5, max_output_tokens=100,
        stop_sequences=["END"], seed=3, candidate_count=1, presence_penalty=0,
        frequency_penalty=0.5, response_mime_type="text/plain", response_logprobs=True,
        logprobs=2,
    ),
    "system": kw(user(HI), system_instruction={"parts": [{"text": "Be brief."}]}),
    "system_only_config": kw(user(HI), system_instruction={"parts": [HI], "role": "user"}),
    "thinking": kw(user(HI), thinking_config={"thinking_budget": 64, "include_thoughts": True}),
    "image": kw(
        user(HI, {"inline_data": {"mime_type": "image/png", "data": "aGVsbG8="}}),
    ),
    "image_urlsafe_needed": kw(
        user({"inline_data": {"mime_type": "image/png", "data": "+/+/AAEC"}}),
    ),
    "file": kw(user({"file_data": {"file_uri": "https://example.com/a.png"}})),
    "file_with_type": kw(
        user({"file_data": {"file_uri": "gs://b/a.pdf", "mime_type": "application/pdf"}})
    ),
    "tools": kw(
        user(HI),
        {
            "role": "model",
            "parts": [
                {"text": "t", "thought": True, "thought_signature": "c2lnbmF0dXJl"},
                {"function_call": {"name": "f", "args": {"a": 1}}},
            ],
        },
        user({"function_response": {"name": "f", "response": {"result": "42"}}}),
        tools=[
            {"function_declarations": [
                {"name": "f", "description": "adds", "parameters_json_schema": SCHEMA}
            ]},
            {"function_declarations": [{"name": "g"}]},
        ],
        tool_config={"function_calling_config": {"mode": "ANY", "allowed_function_names": ["f"]}},
    ),
    "call_ids": kw(
        {"role": "model", "parts": [{"function_call": {"id": "c1", "name": "f", "args": {}}}]},
        user({"function_response": {"id": "c1", "name": "f", "response": {}}}),
    ),
    "safety": kw(
        user(HI),
        safety_settings=[{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
    ),
    "top_level_options": {
        "model": "gemini-2.5-flash",
        "history": [user(HI)],
        "system_instruction": {"parts": [HI]},
        "tool_config": {"function_calling_config": {"mode": "NONE"}},
    },
}  # fmt: skip

UNMAPPED: dict[str, dict[str, Any]] = {
    "response_schema": kw(user(HI), response_schema={"type": "OBJECT"}),
    "openapi_parameters": kw(
        user(HI), tools=[{"function_declarations": [{"name": "f", "parameters": SCHEMA}]}]
    ),
    "search_tool": kw(user(HI), tools=[{"google_search": {}}]),
    "camel_case_part": kw(user({"inlineData": {"mimeType": "image/png", "data": "aGVsbG8="}})),
    "string_temperature": kw(user(HI), temperature="0.5"),
    "bool_temperature": kw(user(HI), temperature=True),
    "not_base64": kw(user({"inline_data": {"mime_type": "image/png", "data": "not base64!"}})),
    "unknown_mode": kw(user(HI), tool_config={"function_calling_config": {"mode": "SOMETIMES"}}),
    "empty_contents": kw(),
    "string_system": kw(user(HI), system_instruction="Be brief."),
}


@pytest.mark.parametrize("name", sorted(MAPPED))
def test_the_native_body_is_the_sdks_for_every_shape_the_blueprint_produces(name: str) -> None:
    path, body = native_body(MAPPED[name])
    assert body is not None, "this shape is one the native transport must send"
    assert (path, body) == sdk_body(MAPPED[name])


@pytest.mark.parametrize("name", sorted(UNMAPPED))
def test_a_shape_the_native_builder_does_not_map_is_left_to_the_sdk(name: str) -> None:
    assert native_body(UNMAPPED[name])[1] is None


@pytest.mark.parametrize("model", ["a/b", "x..y", "m?x=1", "", "models/a/b", "m#f", "m%2F"])
def test_a_model_name_the_url_would_not_carry_as_is_is_left_to_the_sdk(model: str) -> None:
    assert model_path(model) is None


@pytest.mark.parametrize(
    ("base_url", "env"),
    [
        (None, {}),
        ("http://127.0.0.1:9/sandbox/google", {}),
        ("http://127.0.0.1:9/sandbox/google/", {"GOOGLE_GENAI_API_VERSION": "beta"}),
        (None, {"GOOGLE_GEMINI_BASE_URL": "http://127.0.0.1:9/g"}),
        (None, {"GOOGLE_GENAI_API_VERSION": "v1alpha"}),
        ("http://127.0.0.1:9", {"GOOGLE_GEMINI_BASE_URL": "http://127.0.0.1:8/ignored"}),
    ],
)
def test_the_url_and_headers_are_the_ones_an_sdk_client_sends(
    base_url: str | None, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("GOOGLE_GEMINI_BASE_URL", "GOOGLE_GENAI_API_VERSION"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    key = " secret-key\n"
    options = types.HttpOptions(base_url=base_url) if base_url else None
    client = genai.Client(api_key=key, http_options=options)
    sent = client._api_client._build_request("post", "models/m:generateContent", {}, None)
    client.close()
    prefix, headers = endpoint(base_url, key)
    assert prefix + "models/m:generateContent" == sent.url
    telemetry = {"user-agent", "x-goog-api-client"}
    assert headers == {k: v for k, v in sent.headers.items() if k.lower() not in telemetry}
