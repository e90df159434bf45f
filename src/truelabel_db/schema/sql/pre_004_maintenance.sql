-- Every maintenance run (maintain run, the scheduler, the service's dashboard refresh) leaves
-- one row here: started, then done, failed or skipped because another run held the job.
CREATE TABLE IF NOT EXISTS truelabel_meta.maintenance_runs (
    run_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job          text NOT NULL,
    status       text NOT NULL DEFAULT 'running'
                 CHECK (status IN ('running', 'done', 'failed', 'skipped')),
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    detail       jsonb NOT NULL DEFAULT '{}',
    error        text,
    backend_pid  integer NOT NULL DEFAULT pg_backend_pid()
);
CREATE INDEX IF NOT EXISTS maintenance_runs_job_idx
    ON truelabel_meta.maintenance_runs (job, started_at DESC);
