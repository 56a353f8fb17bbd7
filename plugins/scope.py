"""Which payers a plugin rule applies to: the rules a source ties to one program.

A plugin's rules apply to every claim unless the source they encode binds only some payers:
Medicare's 8-minute rule (MCPM 100-04 ch.5 section 20.2) and its plan-of-care conditions
of payment (42 CFR 424.24(c); MBPM 100-02 ch.15 section 220) are Medicare Part B rules,
and a commercial plan that pays by the CPT per-code rule would be denied falsely by them
(audit 2026-12, probes acme_8x8.json and acme_plugins.json). Such a rule names the payer
packs it is written for; any other payer pack applies it only by listing it in its
pack.yaml:

```yaml
opt_in: [therapy/eight-minute-rule]
```
"""

from __future__ import annotations

from collections.abc import Collection

from cleanclaim.engine.hookspecs import Claim, ClaimContext

MEDICARE = ("medicare",)

__all__ = ["MEDICARE", "applies"]


def applies(claim: Claim, context: ClaimContext, rule: str, payers: Collection[str]) -> bool:
    """Whether the plugin rule `rule` (`<plugin>/<rule>`), written for the payer packs
    `payers`, applies to this claim: its payer is one of them, or its pack opts in."""
    return claim.payer in payers or rule in context.opt_in
