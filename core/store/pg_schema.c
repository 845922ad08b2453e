/* The PostgreSQL schema, one migration per version (pg.h). A migration is applied once, in its
 * own transaction, and recorded in agentcore_schema; a released migration is never edited: a
 * change is a new one appended here.
 *
 * Layout (what jobs_lmdb.c and hooks_lmdb.c keep as keys, as tables):
 *   jobs                   a job: its record (json, ac_job_to_json) and the columns queries and
 *                          the queue filter on without reading it: owner, status, created_ms,
 *                          the summary the totals and budgets add up, rev (bumped by every write
 *                          of the record), run (the fencing token), the queue (place, in_queue),
 *                          cancel_requested, and the lease (lease_node, lease_until) of the node
 *                          that runs it
 *   job_data               {training_data, evaluation_data, validation_data?}
 *   events                 (job_id, seq) -> event
 *   trajectories           (job_id, iteration, idx) -> trajectory; the key index INCLUDEs reward
 *                          and success, so that export counts and filters from the index alone
 *   checkpoints            (job_id, checkpoint_id) -> bytea
 *   metrics                (job_id, iteration) -> that iteration's metrics row
 *   webhook_subscriptions  (owner, subscription_id) -> subscription
 *   outbox                 seq -> webhook work; kind and next_at_ms for the delivery thread's
 *                          query, claimed_by/claim_until for its claims
 *   probes                 node -> the last health probe's time (ac_pg_probe writes it)
 * No foreign keys: a job's rows are deleted with it by jobs_pg.c in one transaction, and a key
 * check per trajectory insert would cost every iteration. */
#include "store/pg.h"

const char *const ac_pg_migrations[] = {
    /* version 1 */
    "CREATE SEQUENCE queue_seq;\n"
    "CREATE TABLE jobs (\n"
    "  id text COLLATE \"C\" PRIMARY KEY,\n"
    "  owner text COLLATE \"C\" NOT NULL,\n"
    "  status smallint NOT NULL,\n"
    "  created_ms bigint NOT NULL,\n"
    "  rev bigint NOT NULL DEFAULT 1,\n"
    "  run bigint NOT NULL DEFAULT 0,\n"
    "  place bigint NOT NULL,\n"
    "  in_queue boolean NOT NULL,\n"
    "  cancel_requested boolean NOT NULL DEFAULT false,\n"
    "  lease_node text,\n"
    "  lease_until timestamptz,\n"
    "  current_iteration bigint NOT NULL DEFAULT 0,\n"
    "  trajectories_generated bigint NOT NULL DEFAULT 0,\n"
    "  cost_micro bigint NOT NULL DEFAULT 0,\n"
    "  budget_micro bigint NOT NULL DEFAULT 0,\n"
    "  record json NOT NULL);\n"
    "CREATE INDEX jobs_owner ON jobs (owner, created_ms, id);\n"
    "CREATE INDEX jobs_queue ON jobs (place) WHERE in_queue;\n"
    "CREATE INDEX jobs_running ON jobs (place) WHERE status = 1;\n"
    "CREATE TABLE job_data (job_id text COLLATE \"C\" PRIMARY KEY, data json NOT NULL);\n"
    "CREATE TABLE events (job_id text COLLATE \"C\" NOT NULL, seq bigint NOT NULL, body json NOT NULL,\n"
    "  PRIMARY KEY (job_id, seq));\n"
    "CREATE TABLE trajectories (job_id text COLLATE \"C\" NOT NULL, iteration integer NOT NULL, idx integer NOT NULL,\n"
    "  reward double precision NOT NULL, success boolean NOT NULL, body json NOT NULL,\n"
    "  PRIMARY KEY (job_id, iteration, idx) INCLUDE (reward, success));\n"
    "CREATE TABLE checkpoints (job_id text COLLATE \"C\" NOT NULL, checkpoint_id text COLLATE \"C\" NOT NULL, body bytea NOT NULL,\n"
    "  PRIMARY KEY (job_id, checkpoint_id));\n"
    "CREATE TABLE metrics (job_id text COLLATE \"C\" NOT NULL, iteration integer NOT NULL, body json NOT NULL,\n"
    "  PRIMARY KEY (job_id, iteration));\n"
    "CREATE TABLE webhook_subscriptions (owner text COLLATE \"C\" NOT NULL, subscription_id text COLLATE \"C\" NOT NULL, body json NOT NULL,\n"
    "  PRIMARY KEY (owner, subscription_id));\n"
    "CREATE TABLE outbox (seq bigserial PRIMARY KEY, kind text NOT NULL, next_at_ms bigint NOT NULL DEFAULT 0,\n"
    "  claimed_by text, claim_until timestamptz, body json NOT NULL);\n"
    "CREATE INDEX outbox_due ON outbox (kind, next_at_ms);\n"
    "CREATE TABLE probes (node text PRIMARY KEY, at timestamptz NOT NULL);\n",
};

const int ac_pg_n_migrations = (int)(sizeof ac_pg_migrations / sizeof ac_pg_migrations[0]);

int ac_pg_schema_version(void)
{
    return ac_pg_n_migrations;
}
