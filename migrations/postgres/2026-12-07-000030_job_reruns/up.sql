-- A one-per-key job asked for again while it runs (new work arrived after its last look) runs
-- once more when it ends, instead of leaving that work to the next sweep.
ALTER TABLE jobs ADD COLUMN rerun BOOLEAN NOT NULL DEFAULT FALSE;
