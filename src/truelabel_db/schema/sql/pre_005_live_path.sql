-- Up to which changelog position the follower's changes have been verified equal: the
-- cutover's check of recent changes then reads only what came after it.
ALTER TABLE truelabel_meta.follow_state ADD COLUMN IF NOT EXISTS verified_position bigint;

-- Quarantine stages: also rows a verification could not make equal.
ALTER TABLE truelabel_meta.quarantine DROP CONSTRAINT IF EXISTS quarantine_stage_check;
ALTER TABLE truelabel_meta.quarantine ADD CONSTRAINT quarantine_stage_check
    CHECK (stage IN ('convert', 'load', 'duplicate', 'orphan', 'follow', 'verify'));
