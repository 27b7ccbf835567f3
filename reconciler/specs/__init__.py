"""The desired state: spec files -> validated, defaults-resolved `Spec` values.

Never imports boto3: validation works offline and fast.
"""

from reconciler.specs.load import SpecSet, duplicate_problems, load_specs
from reconciler.specs.models import Spec, json_schema

__all__ = ["Spec", "SpecSet", "duplicate_problems", "json_schema", "load_specs"]
