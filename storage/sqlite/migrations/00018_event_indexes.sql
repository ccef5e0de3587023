-- The audit trail's filters (GET /admin/events, the console's audit page:
-- type, user, app, time), each through an index in the order of the page
-- (time, id, newest first), so that a page reads about as many index
-- entries as it shows (keyset paging) however many events there are:
--   - no filter, since/until: events_time_idx (time, id), 00008;
--   - sub: events_subject_idx (subject, time, id), 00008;
--   - type: (type, time, id), replacing 00010's (type, time), which left
--     ties in time to sort (and serves the overview's unrolled tail too);
--   - client_id: (client_id, time, id), partial: events that concern no
--     client (user and key changes by operators) are left out; queries
--     say client_id <> '' so that the planner can use it.

-- +goose Up
CREATE INDEX events_type_time_id_idx ON events (type, time, id);
CREATE INDEX events_client_idx ON events (client_id, time, id) WHERE client_id <> '';
DROP INDEX events_type_time_idx;

-- +goose Down
CREATE INDEX events_type_time_idx ON events (type, time);
DROP INDEX events_client_idx;
DROP INDEX events_type_time_id_idx;
