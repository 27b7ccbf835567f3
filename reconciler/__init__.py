"""Declarative, GitOps-style management of Amazon WorkSpaces images."""

__version__ = "0.2.0"

# The tag that marks an image as created or adopted by this tool. Namespaced so that an
# organisation's own `managed-by` / `ManagedBy` tag stays free for specs to declare.
OWNERSHIP_TAG_KEY = "workspaces-image-reconciler:managed"
OWNERSHIP_TAG_VALUE = "true"
