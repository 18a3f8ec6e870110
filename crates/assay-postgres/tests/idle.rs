//! Idle source sessions against a real PostgreSQL: a session is lent again only for the same resolved
//! parameters, never across roles, passwords or databases; a session the source closed is not lent again; the
//! set keeps at most its capacity and forgets sessions idle too long.

mod common;

use assay_postgres::ConnectParams;
use assay_postgres::idle::IdleSessions;
use assay_testkit::TestPg;
use std::time::Duration;

async fn params(user: &str, password: &str, db: &str) -> ConnectParams {
    common::params(&common::spec(user, password), db).await
}

async fn backend(c: &tokio_postgres::Client) -> i32 {
    c.query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn sessions_are_reused_only_for_the_same_parameters() {
    let pg = TestPg::shared();
    let db = pg.create_database("idle").await;
    let other_db = pg.create_database("idle2").await;
    pg.create_role("idle_a", "pw_a").await;
    pg.create_role("idle_b", "pw_b").await;
    let sessions = IdleSessions::new(4, Duration::from_secs(60));
    let a = params("idle_a", "pw_a", &db).await;

    let first = sessions.lease(&a).await.unwrap();
    let pid = backend(&first).await;
    drop(first);
    assert_eq!(sessions.idle(), 1);
    let again = sessions.lease(&a).await.unwrap();
    assert_eq!(backend(&again).await, pid, "the idle session is lent again");
    assert_eq!(sessions.idle(), 0, "a lent session is not idle");
    // while it is lent, the same parameters get a session of their own
    let second = sessions.lease(&a).await.unwrap();
    assert_ne!(backend(&second).await, pid);
    drop(again);
    drop(second);
    assert_eq!(sessions.idle(), 2);

    // another role, another database, or a wrong password never gets these sessions
    let b = sessions
        .lease(&params("idle_b", "pw_b", &db).await)
        .await
        .unwrap();
    let who: String = b
        .query_one("SELECT current_user::text", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(who, "idle_b");
    let other = sessions
        .lease(&params("idle_a", "pw_a", &other_db).await)
        .await
        .unwrap();
    let dbname: String = other
        .query_one("SELECT current_database()::text", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(dbname, other_db);
    assert!(
        sessions
            .lease(&params("idle_a", "not-the-password", &db).await)
            .await
            .is_err(),
        "a wrong password must open (and fail) a session of its own"
    );
}

#[tokio::test]
async fn a_session_the_source_closed_is_not_lent_again() {
    let pg = TestPg::shared();
    let db = pg.create_database("idlekill").await;
    pg.create_role("idle_k", "pw_k").await;
    let sessions = IdleSessions::new(4, Duration::from_secs(60));
    let p = params("idle_k", "pw_k", &db).await;
    let lease = sessions.lease(&p).await.unwrap();
    let pid = backend(&lease).await;
    drop(lease);
    let su = pg.superuser(&db).await;
    su.execute("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap();
    // the connection task sees the end of the session shortly after
    for _ in 0..100 {
        if sessions.idle() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sessions.idle(), 0, "the closed session was dropped");
    let fresh = sessions.lease(&p).await.unwrap();
    assert_ne!(backend(&fresh).await, pid);
}

#[tokio::test]
async fn capacity_and_idle_time_bound_what_is_kept() {
    let pg = TestPg::shared();
    let db = pg.create_database("idlecap").await;
    pg.create_role("idle_c", "pw_c").await;
    let p = params("idle_c", "pw_c", &db).await;

    let sessions = IdleSessions::new(2, Duration::from_secs(60));
    let leases = [
        sessions.lease(&p).await.unwrap(),
        sessions.lease(&p).await.unwrap(),
        sessions.lease(&p).await.unwrap(),
    ];
    drop(leases);
    assert_eq!(sessions.idle(), 2, "at most the capacity is kept");

    let short = IdleSessions::new(2, Duration::from_millis(200));
    drop(short.lease(&p).await.unwrap());
    assert_eq!(short.idle(), 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(short.idle(), 0, "a session idle too long is forgotten");
}
