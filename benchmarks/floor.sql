-- The floor: one hand-written DuckDB query computing, per trace, what `nectar prove` needs from the corpus for
-- benchmarks/policy12.toon: the span count, the first matching lowered rule (0-based index, as the engines number
-- them) and the three predicates the prover checks (the default error definition `error == true or
-- http.status >= 500`, and the two must_keep classes). Written by hand for this corpus's columns (one type per
-- field, no NaN, no log events), so it skips everything the engines handle in general (type variants, Datatype
-- coercions, Go %v, NaN order).
-- `{parquet}` is replaced by the runner with the list of part files (a DuckDB list literal of quoted paths).
WITH spans AS (
    SELECT
        trace_id,
        arrival,
        parent_id IS NULL OR parent_id = '' AS is_root,
        coalesce("http.response.status_code", "http.status_code") AS status,  -- alias http.status, first present
        "http.route" AS route,
        "service.name" AS service,
        "user.tier" AS tier,
        "db.system" AS db_system,
        status_code,
        error,
        duration_ms
    FROM read_parquet({parquet})
),
roots AS (  -- Refinery: the last root span to arrive is the root
    SELECT trace_id, route AS r_route, service AS r_service, duration_ms AS r_duration
    FROM spans WHERE is_root
    QUALIFY row_number() OVER (PARTITION BY trace_id ORDER BY arrival DESC) = 1
),
per AS (
    SELECT
        trace_id,
        count(*) AS spans,
        bool_or(status >= 500) AS c_5xx,
        bool_or(error) AS c_error,
        bool_or(db_system IN ('postgresql', 'redis') AND status_code = 2) AS c_db_errors,
        bool_or(service = 'payments') AS c_payments,
        bool_or(tier = 'enterprise') AS c_enterprise,
        bool_or(status IN (429, 503)) AS c_rate_limited,
        bool_or(regexp_matches(route, '^/(api/)?search(/[a-z]+)?$')) AS c_search,
        bool_or(service IN ('api', 'catalog', 'search')) AS c_api,
        bool_or(tier IN ('free', 'pro')) AS c_free_pro,
        bool_or(service = 'payments' AND status >= 500) AS c_failed_payments
    FROM spans GROUP BY trace_id
)
SELECT
    per.trace_id,
    per.spans,
    CASE
        WHEN coalesce(c_5xx, false) THEN 0
        WHEN coalesce(r_route IN ('/healthz', '/readyz', '/livez'), false) THEN 1
        WHEN coalesce(c_error, false) THEN 2
        WHEN coalesce(r_service = 'frontend' AND starts_with(r_route, '/checkout') AND r_duration > 2000.0, false)
            THEN 3
        WHEN coalesce(r_duration > 5000.0, false) THEN 4
        WHEN per.spans > 200 THEN 5
        WHEN coalesce(c_db_errors, false) THEN 6
        WHEN coalesce(c_payments AND c_enterprise, false) THEN 7
        WHEN coalesce(c_rate_limited, false) THEN 8
        WHEN coalesce(c_search, false) THEN 9
        WHEN coalesce(c_api AND c_free_pro, false) THEN 10
        ELSE 11
    END AS rule_index,
    coalesce(c_error, false) OR coalesce(c_5xx, false) AS is_error,
    coalesce(c_failed_payments, false) AS mk_failed_payments,
    coalesce(starts_with(r_route, '/checkout') AND r_duration > 2000.0, false) AS mk_slow_orders
FROM per LEFT JOIN roots ON roots.trace_id = per.trace_id
