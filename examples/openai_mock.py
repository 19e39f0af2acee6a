"""The OpenAI SDK's hidden retries made visible: agentrel.instrument(client), no API key.

The mock transport answers 429 once, then a completion: the SDK retries inside one
``create()``, and agentrel counts that attempt as an absorbed failure, with the tokens.
"""

import httpx
from openai import OpenAI

import agentrel
from agentrel import testing

responses = [
    httpx.Response(429, headers={"retry-after-ms": "10"}, json={"error": {"message": "slow down"}}),
    httpx.Response(
        200,
        json={
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 0,
            "model": "gpt-4o-mini",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": "Refunds take 5 days."},
                }
            ],
            "usage": {"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49},
        },
    ),
]
transport = httpx.MockTransport(lambda request: responses.pop(0))
client = agentrel.instrument(
    OpenAI(api_key="not-needed", http_client=httpx.Client(transport=transport))
)

with testing.capture() as cap:  # in memory; in production: agentrel.configure(...)
    with agentrel.run("support") as run:
        reply = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "refund delay?"}]
        )
    print(reply.choices[0].message.content)
    for attrs, value in cap.points("agentrel.tool.failures"):
        print(f"absorbed {attrs['error.type']}: {value.value:g}")
print(f"outcome={run.outcome} retry_depth={run.retry_depth} tokens={run.tokens}")
