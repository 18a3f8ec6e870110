//! Checks that need their own query: grouping (unique, requiredValues, timeDistributionSize) and other
//! tables (isReplicaOf, aggregationComparison), plus freshness.

use super::*;

/// Whether a valid, non-partial unique index covers exactly `fields` (in any order).
pub(super) async fn unique_index(
    client: &Client,
    plan: &ScanPlan,
    fields: &[String],
) -> Result<bool, PgError> {
    let mut want: Vec<String> = fields.to_vec();
    want.sort();
    want.dedup();
    let rows = client
        .query(
            "SELECT array_agg(a.attname::text ORDER BY a.attname) FROM pg_index i \
             JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY(i.indkey) \
             WHERE n.nspname = $1 AND c.relname = $2 AND i.indisunique AND i.indisvalid \
               AND i.indpred IS NULL AND i.indexprs IS NULL \
             GROUP BY i.indexrelid",
            &[&plan.schema, &plan.table],
        )
        .await
        .map_err(|e| PgError::Property {
            field: "scan".into(),
            message: db_message(&e),
        })?;
    Ok(rows.iter().any(|r| r.get::<_, Vec<String>>(0) == want))
}

pub(super) async fn own_check(
    client: &Client,
    params: &ConnectParams,
    plan: &ScanPlan,
    k: &ScanCheck,
    f: Option<String>,
    records: i64,
    abort: &AtomicBool,
) -> Result<Result<Outcome, String>, PgError> {
    let mut b = Binds::default();
    let sc = scope_sql(plan, &mut b);
    let fw = f.unwrap_or_else(|| "true".into());
    let p = &k.properties;
    let mut o = Outcome {
        check_id: k.id,
        asserted: records,
        ..Default::default()
    };
    let run = |sql: String, b: Binds| async move {
        match guarded(client, params, abort, client.query(&sql, &b.refs())).await? {
            Ok(rows) => Ok(Ok(rows)),
            Err(e) if is_check_error(&e) => Ok(Err(db_message(&e))),
            Err(e) => Err(PgError::Property {
                field: "scan".into(),
                message: db_message(&e),
            }),
        }
    };
    match k.rule.as_str() {
        "unique" if unique_index(client, plan, &k.fields).await? => {
            // a valid unique index on exactly these columns already guarantees it, for every subset of rows
            o.passed = true;
            o.row_level = true;
            o.value = Some(0.0);
        }
        "unique" => {
            let cols: Vec<String> = k.fields.iter().map(|f| c(f)).collect();
            let list = cols.join(", ");
            let not_null = cols
                .iter()
                .map(|x| format!("{x} IS NOT NULL"))
                .collect::<Vec<_>>()
                .join(" AND ");
            let sql = format!(
                "SELECT coalesce(sum(n), 0)::int8, count(*)::int8 FROM (SELECT count(*) AS n FROM {sc} WHERE {fw} AND {not_null} GROUP BY {list} HAVING count(*) > 1) AS d"
            );
            let rows = match run(sql, Binds(b.0.clone())).await? {
                Ok(r) => r,
                Err(e) => return Ok(Err(e)),
            };
            let dup_rows: i64 = rows[0].get(0);
            let groups: i64 = rows[0].get(1);
            o.anomalous = dup_rows;
            o.value = Some(groups as f64);
            o.row_level = true;
            let cov = k.coverage.unwrap_or(1.0);
            o.passed = if cov >= 1.0 {
                dup_rows == 0
            } else {
                records == 0 || (records - dup_rows) as f64 / records as f64 >= cov
            };
            if !o.passed {
                o.message = Some(format!(
                    "In {}, {} records share a value with another record ({} duplicated values)",
                    describe_fields(k),
                    dup_rows,
                    groups
                ));
                let mut b2 = Binds(b.0.clone());
                let lim = b2.push(plan.sample.to_string());
                let sql = format!(
                    "SELECT to_jsonb(t)::text FROM {sc} WHERE {fw} AND ({list}) IN (SELECT {list} FROM {sc} WHERE {fw} AND {not_null} GROUP BY {list} HAVING count(*) > 1) LIMIT {lim}::int8"
                );
                match run(sql, b2).await? {
                    Ok(rows) => o.rows = rows.iter().map(|r| r.get(0)).collect(),
                    Err(e) => return Ok(Err(e)),
                }
            }
        }
        "requiredValues" => {
            let col = match plan
                .columns
                .iter()
                .find(|x| Some(&x.name) == k.fields.first())
            {
                Some(c) => c.clone(),
                None => return Ok(Err("the field no longer exists".into())),
            };
            let cast = cast_of(&col);
            let mut b2 = Binds(b.0.clone());
            let list = b2.push(p["list"].to_string());
            let sql = format!(
                "SELECT x FROM jsonb_array_elements_text({list}::jsonb) AS x WHERE NOT EXISTS \
                 (SELECT 1 FROM {sc} WHERE {fw} AND {} = x::{cast})",
                c(&col.name)
            );
            let rows = match run(sql, b2).await? {
                Ok(r) => r,
                Err(e) => return Ok(Err(e)),
            };
            let missing: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
            o.anomalous = missing.len() as i64;
            o.passed = missing.is_empty();
            if !o.passed {
                o.message = Some(format!(
                    "{} never takes the required values: {}",
                    describe_fields(k),
                    missing.join(", ")
                ));
            }
        }
        "timeDistributionSize" => {
            let unit = match p["interval_name"].as_str().unwrap_or("Daily") {
                "Yearly" => "year",
                "Monthly" => "month",
                "Weekly" => "week",
                "Hourly" => "hour",
                _ => "day",
            };
            let mut b2 = Binds(b.0.clone());
            let u = b2.push(unit);
            let col = c(k.fields.first().map(String::as_str).unwrap_or(""));
            let min = p["min_size"].as_i64().unwrap_or(0).to_string();
            let max = p["max_size"]
                .as_i64()
                .map(|v| v.to_string())
                .unwrap_or_else(|| i64::MAX.to_string());
            let (lo, hi) = (b2.push(min), b2.push(max));
            let sql = format!(
                "SELECT count(*)::int8, count(*) FILTER (WHERE n < {lo}::int8 OR n > {hi}::int8)::int8, \
                 min(b::text) FILTER (WHERE n < {lo}::int8 OR n > {hi}::int8) \
                 FROM (SELECT date_trunc({u}, {col}::timestamp) AS b, count(*) AS n FROM {sc} WHERE {fw} AND {col} IS NOT NULL GROUP BY 1) AS g"
            );
            let rows = match run(sql, b2).await? {
                Ok(r) => r,
                Err(e) => return Ok(Err(e)),
            };
            let buckets: i64 = rows[0].get(0);
            let bad: i64 = rows[0].get(1);
            let first: Option<String> = rows[0].get(2);
            o.value = Some(buckets as f64);
            o.anomalous = bad;
            o.passed = bad == 0;
            if !o.passed {
                o.message = Some(format!(
                    "{bad} of {buckets} {} buckets of {} hold fewer than {} or more than {} rows (first: {})",
                    p["interval_name"].as_str().unwrap_or("Daily"),
                    describe_fields(k),
                    p["min_size"],
                    p["max_size"],
                    first.unwrap_or_default()
                ));
            }
        }
        "freshness" => {
            let sql = match &plan.freshness_column {
                Some(col) => format!(
                    "SELECT (extract(epoch FROM now() - max({}::timestamptz)) * 1000)::float8 FROM {sc}",
                    c(col)
                ),
                None => format!(
                    "SELECT (extract(epoch FROM now() - max(pg_xact_commit_timestamp(xmin))) * 1000)::float8 FROM {sc}"
                ),
            };
            let rows = match run(sql, Binds(b.0.clone())).await? {
                Ok(r) => r,
                Err(e) => {
                    return Ok(Err(if plan.freshness_column.is_none() {
                        format!(
                            "freshness needs a timestamp incremental field or track_commit_timestamp = on: {e}"
                        )
                    } else {
                        e
                    }));
                }
            };
            let age: Option<f64> = rows[0].get(0);
            let max = p["value"]
                .as_f64()
                .or_else(|| p["value"].as_str().and_then(|s| s.parse().ok()))
                .unwrap_or(0.0);
            o.value = age;
            o.passed = age.is_some_and(|a| a <= max);
            if !o.passed {
                o.anomalous = 1;
                o.message = Some(match age {
                    Some(a) => format!(
                        "the newest row of {} is {} ms old, more than {} ms",
                        plan.table,
                        fmt_num(a),
                        fmt_num(max)
                    ),
                    None => format!(
                        "{} has no rows with a time to judge freshness by",
                        plan.table
                    ),
                });
            }
        }
        "isReplicaOf" => {
            let Some((schema, table)) = &k.reference else {
                return Ok(Err("the reference container is not in this database".into()));
            };
            let list = k
                .fields
                .iter()
                .map(|f| quote_ident(f))
                .collect::<Vec<_>>()
                .join(", ");
            let tlist = k.fields.iter().map(|f| c(f)).collect::<Vec<_>>().join(", ");
            let mut rf = "true".to_string();
            if let Some(f) = p["ref_filter"].as_str().filter(|s| !s.trim().is_empty()) {
                if let Err(e) = check_sql_fragment(f) {
                    return Ok(Err(e));
                }
                rf = format!("({f})");
            }
            let reference = qualified(schema, table);
            let sql = format!(
                "SELECT (SELECT count(*) FROM (SELECT {tlist} FROM {sc} WHERE {fw} EXCEPT ALL SELECT {list} FROM {reference} WHERE {rf}) AS a)::int8, \
                        (SELECT count(*) FROM (SELECT {list} FROM {reference} WHERE {rf} EXCEPT ALL SELECT {tlist} FROM {sc} WHERE {fw}) AS b)::int8"
            );
            let rows = match run(sql, Binds(b.0.clone())).await? {
                Ok(r) => r,
                Err(e) => return Ok(Err(e)),
            };
            let extra: i64 = rows[0].get(0);
            let missing: i64 = rows[0].get(1);
            o.anomalous = extra + missing;
            o.passed = o.anomalous == 0;
            if !o.passed {
                o.message = Some(format!(
                    "{} differs from {table}: {extra} rows only here, {missing} rows only in the reference",
                    plan.table
                ));
            }
        }
        "aggregationComparison" => {
            let Some((schema, table)) = &k.reference else {
                return Ok(Err("the reference container is not in this database".into()));
            };
            let (Some(e1), Some(e2)) = (p["expression"].as_str(), p["ref_expression"].as_str())
            else {
                return Ok(Err("expression and ref_expression are required".into()));
            };
            for e in [e1, e2] {
                if let Err(m) = check_sql_fragment(e) {
                    return Ok(Err(m));
                }
            }
            let mut rf = "true".to_string();
            if let Some(f) = p["ref_filter"].as_str().filter(|s| !s.trim().is_empty()) {
                if let Err(e) = check_sql_fragment(f) {
                    return Ok(Err(e));
                }
                rf = format!("({f})");
            }
            let sql = format!(
                "SELECT (SELECT ({e1})::float8 FROM {sc} WHERE {fw}), (SELECT ({e2})::float8 FROM {} WHERE {rf})",
                qualified(schema, table)
            );
            let rows = match run(sql, Binds(b.0.clone())).await? {
                Ok(r) => r,
                Err(e) => return Ok(Err(e)),
            };
            let (a, r): (Option<f64>, Option<f64>) = (rows[0].get(0), rows[0].get(1));
            let cmp = p["comparison"].as_str().unwrap_or("eq");
            o.value = a;
            o.passed = matches!((a, r), (Some(a), Some(r)) if cmp_ok(cmp, a, r));
            if !o.passed {
                o.anomalous = 1;
                o.message = Some(format!(
                    "{e1} = {} is not {cmp} {e2} = {} of {table}",
                    a.map(fmt_num).unwrap_or_else(|| "null".into()),
                    r.map(fmt_num).unwrap_or_else(|| "null".into())
                ));
            }
        }
        other => return Ok(Err(format!("rule '{other}' has no query"))),
    }
    Ok(Ok(o))
}
