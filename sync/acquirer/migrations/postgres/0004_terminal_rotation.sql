-- Terminal administration: a rotated secret keeps the one it replaced until prev_until
-- (Unix ms) so that the terminal can be provisioned anew meanwhile; a revoked terminal
-- (revoked_at, Unix ms; 0: not revoked) is refused at once.

ALTER TABLE terminals
	ADD COLUMN prev_secret BYTEA,
	ADD COLUMN prev_until  BIGINT NOT NULL DEFAULT 0,
	ADD COLUMN revoked_at  BIGINT NOT NULL DEFAULT 0;
