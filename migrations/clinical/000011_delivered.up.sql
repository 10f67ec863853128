-- Every intake submission id ever delivered, kept when the submission itself
-- is erased or removed by retention. Without it, a row replayed from an old
-- intake backup (its MAC and binding still valid) would be delivered again
-- and undo an erasure. Ids only, never content.
CREATE TABLE delivered (
  intake_id    uuid        PRIMARY KEY,
  delivered_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO delivered (intake_id, delivered_at)
  SELECT intake_id, transferred_at FROM submissions ON CONFLICT DO NOTHING;

REVOKE ALL ON delivered FROM PUBLIC;
-- Only the worker reads and adds; nothing in the app may remove an id.
GRANT SELECT, INSERT ON delivered TO airlock_clinical_transfer;
