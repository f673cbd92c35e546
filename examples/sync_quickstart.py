"""The spec's quickstart, sync: run, stream, log_request, throw_on_error=False, retry logs."""

from __future__ import annotations

import logging
import time

from promptrun import PromptLayer, PromptLayerNotFoundError

# Show promptrun's warnings, such as "Retrying in 2 seconds..." before a retry.
logging.basicConfig(
    level=logging.WARNING, format="%(asctime)s - %(name)s - %(levelname)s - %(message)s"
)


def main() -> None:
    with PromptLayer(cache_ttl_seconds=300) as pl:
        # 1. run(): fetch the template, call the provider, log it in the background.
        result = pl.run("greet", input_variables={"name": "Grace", "topic": "compilers"})
        reply = result["prompt_blueprint"]["prompt_template"]["messages"][-1]
        print("reply:", reply["content"][0]["text"])
        print("request id:", result["request_id"])

        # 2. Streaming: chunks as they arrive; the request id comes on the last one.
        for chunk in pl.run("haiku", input_variables={"subject": "autumn"}, stream=True):
            if chunk["request_id"]:
                print("streamed request id:", chunk["request_id"])

        # 3. log_request(): your own call, logged without waiting.
        now = time.time()
        pl.log_request(
            provider="openai",
            model="gpt-4o",
            input={
                "type": "chat",
                "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
            },
            output={
                "type": "chat",
                "messages": [{"role": "assistant", "content": [{"type": "text", "text": "hello"}]}],
            },
            request_start_time=now - 0.5,
            request_end_time=now,
            tags=["getting-started"],
        )

        # 4. Errors: the spec's exception names.
        try:
            pl.templates.get("NonExistentTemplate")
        except PromptLayerNotFoundError as e:
            print(f"Template not found: {e}")

    # 5. throw_on_error=False: a warning and None instead of an exception.
    with PromptLayer(throw_on_error=False) as quiet:
        print("missing template gives:", quiet.templates.get("NonExistentTemplate"))


if __name__ == "__main__":
    main()
