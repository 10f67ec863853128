-- Bound what any login, the INSERT-only writer included, can store: an
-- envelope is at most 64 MiB (seal.MaxEnvelope, four times intake's largest
-- allowed body INTAKE_MAX_BODY of 16 MiB, so a legitimate submission always
-- fits). Without it, garbage rows of hundreds of MB made every transfer pass
-- fail. NOT VALID: rows stored before this migration are not checked here;
-- transfer quarantines an oversize one by digest without reading it.
-- octet_length reads a stored value's size without detoasting it.
ALTER TABLE submissions ADD CONSTRAINT submissions_envelope_size
  CHECK (octet_length(envelope) <= 67108864) NOT VALID;
