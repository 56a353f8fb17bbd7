"""Tools for the people who build cleanclaim, not parts of a check: the policy-language
fuzzer (`python -m cleanclaim.engine.tools.fuzz`). They live under the engine because they
drive the language with the engine's functions and tables; `dsl/` itself imports nothing
from the engine (docs/architecture.md, layer rule 1)."""
