"""Engine ids from document ids: Qdrant and Weaviate both key objects by UUID, so each document
id maps to one UUID (version 5, in ragembed's namespace) and upserting a document again replaces
it. The same document has the same UUID in both engines. Where a store keeps a document's passages
as points of their own (the Qdrant server and Edge), passage i of a document has its own UUID, in another
namespace, so it never collides with a document's."""

from __future__ import annotations

import uuid

POINT_NAMESPACE = uuid.UUID("6f0c2a6e-5d2b-4c1e-9a57-2f1f4b3c8d10")


def point_id(doc_id: str) -> str:
    return str(uuid.uuid5(POINT_NAMESPACE, doc_id))


PASSAGE_NAMESPACE = uuid.UUID("b3d6c0de-3f41-4e0a-8c52-7a9e1d2f6b84")


def passage_point_id(doc_id: str, index: int) -> str:
    return str(uuid.uuid5(PASSAGE_NAMESPACE, f"{index}:{doc_id}"))
