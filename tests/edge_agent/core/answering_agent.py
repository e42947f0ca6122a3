"""Child process for the agent kill test: answers queries offline and prints each query id once the
agent has handed the answer back (so its outcome was promised durable).

Usage: python -m tests.edge_agent.core.answering_agent BUNDLE QUEUE_FILE COUNT
"""

from __future__ import annotations

import sys
from pathlib import Path

from confroute.contract import ModelRef
from confroute.engine import SamplingParams
from edge_agent.cloud import PolicyKeeper
from edge_agent.core import AgentIdentity, EdgeAgent
from edge_agent.model import EdgeModel
from edge_agent.outbox import OutcomeQueue, QueueConfig


def main(bundle: str, queue_file: str, count: int) -> None:
    model = EdgeModel(bundle)
    keeper = PolicyKeeper(ModelRef(model.model_id, model.version), "kill")
    with OutcomeQueue(QueueConfig(Path(queue_file))) as queue:
        agent = EdgeAgent(model, keeper, queue, AgentIdentity("kill-device", "kill"))
        for i in range(count):
            answer = agent.answer([{"role": "user", "content": f"question {i}"}], SamplingParams(max_new_tokens=2))
            print(answer.query_id, flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
