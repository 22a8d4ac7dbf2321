"""``edgesam deploy``: the fastest faithful way to run a model on this machine, chosen and checked.

    from edgesam.deploy import deploy
    result = deploy("edgesam-demo", "demo-deployed", budget_min=5)
    print(result.chosen.name)               # e.g. "openvino-fp32"
    SamPredictor.from_bundle("demo-deployed")  # runs the recorded choice

Files: :mod:`~edgesam.deploy.candidates` (what may run here), :mod:`~edgesam.deploy.gate`
(held-out images, fidelity vs fp32 torch), :mod:`~edgesam.deploy.timing` (latency),
:mod:`~edgesam.deploy.choose` (results and the choice), :mod:`~edgesam.deploy.report`
(table, markdown, plot) and :mod:`~edgesam.deploy.run` (the orchestration).
"""

from __future__ import annotations

from edgesam.deploy.candidates import CANDIDATES, CandidateSpec, plan_candidates
from edgesam.deploy.choose import CandidateResult, choose
from edgesam.deploy.run import DeployError, DeployResult, deploy

__all__ = [
    "CANDIDATES",
    "CandidateResult",
    "CandidateSpec",
    "DeployError",
    "DeployResult",
    "choose",
    "deploy",
    "plan_candidates",
]
