//! The police-liaison dashboard end to end, in a real headless Chromium (Debian's `chromium`)
//! driven over the `DevTools` protocol: the server runs on a loopback port with flags the real
//! engine wrote for the scenarios; the test signs in, filters, opens flags, reads what the page
//! shows and checks what the liaison role must not see.
//!
//! Set `MODSIGNAL_DASHBOARD_SCREENSHOTS=DIR` to keep screenshots of each step, to look at.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::api_support::{ANALYST, KEY, LIAISON, cohort_pages, config, scenario_flags, state, store_with};
use chromiumoxide::cdp::browser_protocol::page::CaptureScreenshotFormat;
use chromiumoxide::page::ScreenshotParams;
use chromiumoxide::{Browser, BrowserConfig, Page};
use futures_util::StreamExt;
use modsignal_api::{Pseudonymiser, serve_listener};
use modsignal_core::event::Category;
use modsignal_core::model::Effect;
use modsignal_core::{Flag, Subject};
use serde::de::DeserializeOwned;
use tokio::net::TcpListener;

/// How long the page may take to show something before the test fails. Not a performance
/// bound: only a guard so that a broken page fails the test instead of hanging it.
const PATIENCE: Duration = Duration::from_secs(30);

/// Debian's Chromium on the PATH, or a failure that says how to get it.
fn chromium() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("chromium"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "the dashboard test needs headless Chromium: `chromium` is not on the PATH. \
                 Install Debian's package (`apt-get install chromium`); scripts/test does this."
            )
        })
}

struct Session {
    page: Page,
    origin: String,
    shots: Option<PathBuf>,
}

impl Session {
    async fn eval<T: DeserializeOwned>(&self, js: &str) -> T {
        self.page
            .evaluate(js)
            .await
            .unwrap_or_else(|e| panic!("evaluating {js}: {e}"))
            .into_value()
            .unwrap_or_else(|e| panic!("the value of {js}: {e}"))
    }

    /// Waits until `js` is true in the page.
    async fn wait(&self, js: &str, what: &str) {
        let start = Instant::now();
        loop {
            let ok: bool = self.eval(&format!("Boolean({js})")).await;
            if ok {
                return;
            }
            if start.elapsed() > PATIENCE {
                let text: String = self.eval("document.body.innerText").await;
                panic!("the page never showed {what} ({js}); it shows:\n{text}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn text(&self, id: &str) -> String {
        self.eval(&format!("document.getElementById('{id}').textContent")).await
    }

    async fn visible(&self, id: &str) -> bool {
        self.eval(&format!(
            "(() => {{ const e = document.getElementById('{id}'); return !!e && e.offsetParent !== null; }})()"
        ))
        .await
    }

    async fn visible_selector(&self, selector: &str) -> bool {
        self.eval(&format!(
            "(() => {{ const e = document.querySelector('{selector}'); return !!e && e.offsetParent !== null; }})()"
        ))
        .await
    }

    async fn loads(&self) -> u64 {
        self.eval("Number(document.getElementById('list-view').dataset.loads || 0)")
            .await
    }

    /// The flag ids of the list's rows, in order.
    async fn rows(&self) -> Vec<String> {
        self.eval("[...document.querySelectorAll('[data-testid=flag-row]')].map(r => r.dataset.flagId)")
            .await
    }

    async fn sign_in(&self, token: &str) {
        self.page
            .find_element("#token-input")
            .await
            .expect("the sign-in box")
            .click()
            .await
            .expect("a click")
            .type_str(token)
            .await
            .expect("typing");
        self.page
            .find_element("#signin-button")
            .await
            .expect("the sign-in button")
            .click()
            .await
            .expect("a click");
    }

    /// Chooses an option of a filter as a person would, and waits for the list to reload.
    async fn filter(&self, id: &str, value: &str) {
        let before = self.loads().await;
        let _: bool = self
            .eval(&format!(
                "(() => {{ const s = document.getElementById('{id}'); s.value = '{value}'; \
                 s.dispatchEvent(new Event('change')); return true; }})()"
            ))
            .await;
        self.wait(
            &format!("Number(document.getElementById('list-view').dataset.loads || 0) > {before}"),
            "the list reloaded",
        )
        .await;
    }

    async fn open_flag(&self, id: &str) {
        let _: bool = self
            .eval(&format!("(() => {{ location.hash = '#/flag/{id}'; return true; }})()"))
            .await;
        self.wait(
            &format!("document.getElementById('flag-view').dataset.loadedFlag === '{id}'"),
            &format!("flag {id}"),
        )
        .await;
    }

    async fn shot(&self, name: &str) {
        if let Some(dir) = &self.shots {
            let png = self
                .page
                .screenshot(
                    ScreenshotParams::builder()
                        .format(CaptureScreenshotFormat::Png)
                        .full_page(true)
                        .build(),
                )
                .await
                .expect("a screenshot");
            std::fs::write(dir.join(format!("{name}.png")), png).expect("the screenshot is written");
        }
    }

    /// Every word-like token of the page's visible text.
    async fn words(&self) -> BTreeSet<String> {
        let text: String = self.eval("document.body.innerText").await;
        text.split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// Flag ids in the list's order: newest `at` first, then flag id.
fn in_list_order<'a>(flags: impl Iterator<Item = &'a Flag>) -> Vec<String> {
    let mut v: Vec<&Flag> = flags.collect();
    v.sort_by(|a, b| b.at.cmp(&a.at).then(a.flag_id.cmp(&b.flag_id)));
    v.into_iter().map(|f| f.flag_id.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(feature = "browser"),
    ignore = "drives Chromium: scripts/test, or --features modsignal-tests/browser"
)]
async fn the_dashboard_explains_raised_flags_and_hides_what_a_liaison_officer_must_not_see() {
    let executable = chromium();
    let flags = scenario_flags();
    let mut by_id: BTreeMap<&str, Vec<&Flag>> = BTreeMap::new();
    for f in &flags {
        by_id.entry(&f.flag_id).or_default().push(f);
    }
    for v in by_id.values_mut() {
        v.sort_by_key(|f| f.revision);
        v.dedup_by_key(|f| f.revision);
    }
    let newest = |id: &str| *by_id[id].last().unwrap();
    let newest_raised = |id: &str| *by_id[id].iter().rev().find(|f| f.raised).unwrap();

    // The server, on a loopback port, with the liaison role pseudonymised. The viral message
    // (m3, category 4) also has a cohort of 120 resharers, every seventh raised.
    let store = store_with(&flags);
    let cohort = cohort_pages("m3", Category::CommunicationsOffence, 120, 7, 1);
    for page in &cohort {
        store.ingest_cohort(page).expect("a valid cohort page");
    }
    let members: Vec<&modsignal_core::cohort::Member> = cohort.iter().flat_map(|p| p.members.iter()).collect();
    let feeder = store.clone();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_listener(listener, state(&config(true), store), async {
        let _ = stopped.await;
    }));

    let profile = std::env::temp_dir().join(format!("modsignal-dashboard-{}", std::process::id()));
    let browser_config = BrowserConfig::builder()
        .chrome_executable(&executable)
        .no_sandbox()
        .arg("disable-gpu")
        .arg("disable-background-networking")
        .user_data_dir(&profile)
        // Starting Chromium on a busy two-core machine can take a while; this only bounds it.
        .launch_timeout(Duration::from_secs(120))
        .window_size(1280, 1000)
        .viewport(None)
        .build()
        .expect("a browser configuration");
    let (mut browser, mut handler) = Browser::launch(browser_config)
        .await
        .unwrap_or_else(|e| panic!("Chromium ({}) did not start: {e}", executable.display()));
    let devtools = tokio::spawn(async move { while handler.next().await.is_some() {} });
    let page = browser.new_page("about:blank").await.expect("a tab");
    let shots = std::env::var_os("MODSIGNAL_DASHBOARD_SCREENSHOTS").map(PathBuf::from);
    let s = Session {
        page,
        origin: origin.clone(),
        shots,
    };

    s.page.goto(format!("{origin}/")).await.expect("the dashboard loads");
    s.wait("document.body.dataset.ready === 'true'", "the page started")
        .await;
    assert!(s.visible("signin").await, "a signed-out visitor sees the sign-in box");
    assert!(!s.visible("list-view").await);

    // A wrong code is refused in plain words.
    s.sign_in("not-the-right-code-000000").await;
    s.wait(
        "!document.getElementById('signin-error').hidden",
        "the refusal of a wrong code",
    )
    .await;
    assert!(s.text("signin-error").await.contains("not accepted"));
    s.shot("01-signin-refused").await;

    // --- An analyst: every raised flag ---------------------------------------------------
    s.sign_in(ANALYST).await;
    s.wait(
        "Number(document.getElementById('list-view').dataset.loads || 0) >= 1",
        "the list",
    )
    .await;
    assert_eq!(
        s.eval::<String>("sessionStorage.getItem('modsignal.token')").await,
        ANALYST
    );
    assert_eq!(
        s.eval::<u64>("localStorage.length").await,
        0,
        "the code is kept for the tab only"
    );
    assert_eq!(
        s.eval::<String>("document.getElementById('session-role').dataset.role")
            .await,
        "analyst"
    );
    assert!(!s.visible("pseudonym-note").await);
    let raised_now = in_list_order(by_id.keys().map(|id| newest(id)).filter(|f| f.raised));
    assert_eq!(s.rows().await, raised_now, "every raised flag, newest first");
    s.shot("02-analyst-list").await;

    // The time-to-removal chart counts the listed flags by how long they stayed up.
    let bars: Vec<(String, u64)> = s
        .eval("[...document.querySelectorAll('[data-testid=ttr-bar]')].map(b => [b.dataset.bucket, Number(b.dataset.count)])")
        .await;
    let listed: Vec<&Flag> = raised_now.iter().map(|id| newest(id)).collect();
    let still_up = listed.iter().filter(|f| f.exposure.removed_at.is_none()).count() as u64;
    assert_eq!(bars.iter().map(|(_, n)| n).sum::<u64>(), listed.len() as u64);
    assert_eq!(bars.iter().find(|(b, _)| b == "up").unwrap().1, still_up);
    let within_an_hour = listed
        .iter()
        .filter(|f| {
            f.exposure
                .removed_at
                .is_some_and(|r| r.secs_since(f.exposure.posted_at) < 3600)
        })
        .count() as u64;
    assert!(within_an_hour > 0, "the scenarios have swift removals");
    assert_eq!(bars.iter().find(|(b, _)| b == "0").unwrap().1, within_an_hour);

    // Filters.
    s.filter("filter-category", "credible_threat").await;
    let expected: Vec<String> = raised_now
        .iter()
        .filter(|id| newest(id).category.as_str() == "credible_threat")
        .cloned()
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(s.rows().await, expected, "only credible threats");
    s.filter("filter-category", "").await;
    s.filter("filter-track", "high_threshold").await;
    let expected: Vec<String> = raised_now
        .iter()
        .filter(|id| newest(id).track.as_str() == "high_threshold")
        .cloned()
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(s.rows().await, expected, "only category 4");
    s.filter("filter-track", "").await;
    assert_eq!(s.rows().await, raised_now);

    // Open the credible threat the platform removed swiftly, from the list.
    let threat = by_id
        .keys()
        .map(|id| newest(id))
        .find(|f| f.message_id == "m1" && f.subject == Subject::Author)
        .expect("the threat scenario's flag");
    let _: bool = s
        .eval(&format!(
            "(() => {{ document.querySelector('[data-flag-id=\"{}\"] a').click(); return true; }})()",
            threat.flag_id
        ))
        .await;
    s.wait(
        &format!(
            "document.getElementById('flag-view').dataset.loadedFlag === '{}'",
            threat.flag_id
        ),
        "the threat's page",
    )
    .await;
    s.shot("03-analyst-threat").await;
    let title = s.text("flag-title").await;
    assert!(title.contains("Credible threat") && title.contains("raised"), "{title}");
    assert_eq!(s.text("flag-provision").await, threat.provision);
    assert_eq!(
        s.text("flag-account").await,
        threat.account,
        "an analyst sees the account id"
    );
    for (effect, list) in [
        (Effect::For, "factors-for"),
        (Effect::Against, "factors-against"),
        (Effect::Neutral, "factors-neutral"),
    ] {
        let shown: Vec<(String, String)> = s
            .eval(&format!(
                "[...document.querySelectorAll('#{list} li[data-code]')].map(li => [li.dataset.code, li.querySelector('.evidence').textContent])"
            ))
            .await;
        let expected: Vec<(String, String)> = threat
            .factors
            .iter()
            .filter(|f| f.effect == effect)
            .map(|f| (f.code.to_string(), f.evidence.clone()))
            .collect();
        assert_eq!(shown, expected, "{list}");
    }
    assert!(
        threat.factors.iter().any(|f| f.code == "swift_removal"),
        "the scenario's swift removal counts against"
    );
    assert_eq!(
        s.eval::<String>("document.querySelector('[data-testid=reach-audience]').dataset.value")
            .await,
        threat.reach.audience.to_string()
    );
    let exposure = s.text("flag-exposure").await;
    let removed = threat.exposure.removed_at.unwrap().to_string();
    let posted = threat.exposure.posted_at.to_string();
    assert!(exposure.contains("by the platform"), "{exposure}");
    assert!(exposure.contains(&format!("{} UTC", &removed[11..19])), "{exposure}");
    assert!(exposure.contains(&format!("{} UTC", &posted[11..19])), "{exposure}");
    let revisions = by_id[threat.flag_id.as_str()].len();
    let points: Vec<u64> = s
        .eval("[...document.querySelectorAll('#reach-chart [data-testid=reach-point]')].map(p => Number(p.dataset.value))")
        .await;
    let audiences: Vec<u64> = by_id[threat.flag_id.as_str()]
        .iter()
        .map(|f| f.reach.audience)
        .collect();
    assert_eq!(points.len(), revisions, "one point per revision");
    let mut sorted = points.clone();
    sorted.sort_unstable();
    let mut expected = audiences.clone();
    expected.sort_unstable();
    assert_eq!(sorted, expected);
    assert_eq!(
        s.eval::<u64>("document.querySelectorAll('#reach-chart [data-testid=removal-marker]').length")
            .await,
        1,
        "the removal is marked on the chart"
    );
    assert_eq!(
        s.eval::<u64>("document.querySelectorAll('[data-testid=revision-row]').length")
            .await,
        revisions as u64
    );

    // Exports download the flag as files.
    for kind in ["json", "csv"] {
        let _: bool = s
            .eval(&format!(
                "(() => {{ document.getElementById('export-{kind}').click(); return true; }})()"
            ))
            .await;
        let file = format!("modsignal-flag-{}.{kind}", threat.flag_id);
        s.wait(
            &format!("document.getElementById('export-status').dataset.file === '{file}'"),
            &format!("the {kind} download"),
        )
        .await;
        let bytes: u64 = s
            .eval("Number(document.getElementById('export-status').dataset.bytes)")
            .await;
        assert!(bytes > 200, "{kind}: {bytes} bytes");
    }

    // A message with resharers: each has a flag of their own.
    let viral = by_id
        .keys()
        .map(|id| newest(id))
        .find(|f| f.message_id == "m3" && f.subject == Subject::Author)
        .expect("the viral scenario's flag");
    let resharers: BTreeSet<String> = by_id
        .keys()
        .map(|id| newest(id))
        .filter(|f| f.message_id == "m3" && f.subject == Subject::Resharer)
        .map(|f| f.flag_id.clone())
        .collect();
    assert!(
        resharers.iter().any(|id| !newest(id).raised),
        "some resharers' flags are not raised"
    );
    s.open_flag(&viral.flag_id).await;
    let shown: BTreeSet<String> = s
        .eval("[...document.querySelectorAll('[data-testid=resharer-row]')].map(r => r.dataset.flagId)")
        .await;
    assert_eq!(shown, resharers, "an analyst sees every resharer's flag");
    assert!(s.text("flag-exposure").await.contains("Still up"));
    s.shot("04-analyst-viral").await;

    // Everyone who reshared it: the cohort's summary, and its members fifty at a time.
    assert_eq!(viral.category, Category::CommunicationsOffence);
    s.wait(
        "document.querySelector('[data-testid=cohort]')?.dataset.loads === '1'",
        "the first page of the resharers",
    )
    .await;
    let summary: String = s
        .eval("document.querySelector('[data-testid=cohort-summary]').textContent")
        .await;
    for part in [
        "120 people reshared it",
        "17 of their flags are raised",
        "80 reshares are still up",
        "1 hour in the middle case",
        "1 hour 48 minutes or less",
        "the longest for 2 hours",
    ] {
        assert!(summary.contains(part), "{part:?} in {summary}");
    }
    let cohort_rows = "[...document.querySelectorAll('[data-testid=cohort-row]')].map(r => r.dataset.account)";
    assert_eq!(s.eval::<Vec<String>>(cohort_rows).await.len(), 50);
    for loads in [2, 3] {
        assert!(s.visible_selector("[data-testid=cohort-more]").await, "more to show");
        let _: bool = s
            .eval("(() => { document.querySelector('[data-testid=cohort-more]').click(); return true; })()")
            .await;
        s.wait(
            &format!("document.querySelector('[data-testid=cohort]').dataset.loads === '{loads}'"),
            "the next page of the resharers",
        )
        .await;
    }
    let accounts_shown: Vec<String> = s.eval(cohort_rows).await;
    let expected: Vec<String> = members.iter().map(|m| m.account.clone()).collect();
    assert_eq!(accounts_shown, expected, "every resharer once, in account order");
    assert!(!s.visible_selector("[data-testid=cohort-more]").await, "nothing more");
    let removed = members.iter().find(|m| m.exposure.removed_at.is_some()).unwrap();
    let row: String = s
        .eval(&format!(
            "document.querySelector('[data-testid=cohort-row][data-account=\"{}\"]').textContent",
            removed.account
        ))
        .await;
    assert!(row.contains("by the platform"), "{row}");
    s.shot("04b-analyst-viral-resharers").await;

    // Nothing was fetched from anywhere but this server.
    let foreign: Vec<String> = s
        .eval(&format!(
            "performance.getEntriesByType('resource').map(e => e.name).filter(n => !n.startsWith('{}'))",
            s.origin
        ))
        .await;
    assert!(foreign.is_empty(), "{foreign:?}");

    // --- A liaison officer: raised flags only, and pseudonyms ----------------------------
    let _: bool = s
        .eval("(() => { location.hash = '#/'; document.getElementById('sign-out').click(); return true; })()")
        .await;
    s.wait(
        "!document.getElementById('signin').hidden",
        "the sign-in box after signing out",
    )
    .await;
    assert!(
        s.eval::<bool>("sessionStorage.getItem('modsignal.token') === null")
            .await,
        "signing out forgets the code"
    );
    let before = s.loads().await;
    s.sign_in(LIAISON).await;
    s.wait(
        &format!("Number(document.getElementById('list-view').dataset.loads || 0) > {before}"),
        "the liaison officer's list",
    )
    .await;
    assert_eq!(
        s.eval::<String>("document.getElementById('session-role').dataset.role")
            .await,
        "liaison"
    );
    assert!(s.visible("pseudonym-note").await);
    let ever_raised = in_list_order(
        by_id
            .keys()
            .filter(|id| by_id[*id].iter().any(|f| f.raised))
            .map(|id| newest_raised(id)),
    );
    assert_eq!(s.rows().await, ever_raised, "raised flags only, newest first");
    s.shot("05-liaison-list").await;

    let accounts: BTreeSet<String> = flags
        .iter()
        .map(|f| f.account.clone())
        .chain(members.iter().map(|m| m.account.clone()))
        .collect();
    let p = Pseudonymiser::new(KEY.as_bytes());
    let row_accounts: Vec<String> = s
        .eval("[...document.querySelectorAll('[data-testid=row-account]')].map(a => a.textContent)")
        .await;
    for (id, shown) in ever_raised.iter().zip(&row_accounts) {
        assert_eq!(
            *shown,
            p.account(&newest(id).account),
            "the pseudonym of the flag's account"
        );
    }
    let leaked: Vec<String> = s.words().await.intersection(&accounts).cloned().collect();
    assert!(
        leaked.is_empty(),
        "account ids on the liaison officer's list: {leaked:?}"
    );

    // A flag that was never raised does not exist for this role.
    let never = by_id
        .keys()
        .find(|id| by_id[**id].iter().all(|f| !f.raised))
        .expect("the scenarios have flags never raised");
    s.open_flag(never).await;
    assert!(s.visible("flag-not-found").await);
    assert!(!s.visible("flag-detail").await);
    assert!(s.text("flag-not-found").await.contains("not allow"));
    s.shot("06-liaison-not-found").await;

    // The viral message: the author's raised flag, with no unraised resharer flags and no ids.
    s.open_flag(&viral.flag_id).await;
    assert!(s.visible("flag-detail").await);
    assert_eq!(s.text("flag-account").await, p.account(&viral.account));
    let shown: BTreeSet<String> = s
        .eval("[...document.querySelectorAll('[data-testid=resharer-row]')].map(r => r.dataset.flagId)")
        .await;
    let raised_resharers: BTreeSet<String> = resharers
        .iter()
        .filter(|id| by_id[id.as_str()].iter().any(|f| f.raised))
        .cloned()
        .collect();
    assert_eq!(shown, raised_resharers, "only resharers' raised flags");
    // Of everyone who reshared it, the raised ones only, by pseudonym; the numbers count all.
    s.wait(
        "document.querySelector('[data-testid=cohort]')?.dataset.loads === '1'",
        "the liaison officer's resharers",
    )
    .await;
    let rows: Vec<(String, String)> = s
        .eval("[...document.querySelectorAll('[data-testid=cohort-row]')].map(r => [r.dataset.account, r.dataset.raised])")
        .await;
    let expected: Vec<(String, String)> = members
        .iter()
        .filter(|m| m.raised)
        .map(|m| (p.account(&m.account), "true".to_owned()))
        .collect();
    assert_eq!(rows.len(), 17);
    assert_eq!(rows, expected, "raised resharers only, by pseudonym, in account order");
    assert!(!s.visible_selector("[data-testid=cohort-more]").await);
    let summary: String = s
        .eval("document.querySelector('[data-testid=cohort-summary]').textContent")
        .await;
    assert!(summary.contains("120 people reshared it"), "{summary}");
    let leaked: Vec<String> = s.words().await.intersection(&accounts).cloned().collect();
    assert!(leaked.is_empty(), "account ids on a flag's page: {leaked:?}");
    s.shot("07-liaison-viral").await;

    // A flag raised once and lowered later (a label withdrawn) shows its last raised state,
    // marked as no longer raised.
    let lowered = by_id
        .keys()
        .find(|id| by_id[**id].iter().any(|f| f.raised) && !newest(id).raised)
        .expect("the negated-labels scenario has a flag raised, then lowered");
    s.open_flag(lowered).await;
    assert!(
        s.visible("flag-not-current").await,
        "{lowered} is marked as no longer raised"
    );
    assert!(s.text("flag-title").await.contains("since lowered"));
    s.shot("08-liaison-lowered").await;

    // The list is live: a flag written while the page is open appears without a reload, first.
    let _: bool = s.eval("(() => { location.hash = '#/'; return true; })()").await;
    s.wait("!document.getElementById('list-view').hidden", "the list again")
        .await;
    let events = [
        r#"{"type":"post","at":"2026-02-01T09:00:00Z","id":"live1","author":{"id":"u500","followers":900}}"#,
        r#"{"type":"label","at":"2026-02-01T09:02:00Z","id":"live1","category":"credible_threat","confidence":0.95,"source":"reviewer"}"#,
    ];
    let (live, errors) = modsignal_tests::run_lines(&modsignal_core::Policy::default(), &events);
    assert!(errors.is_empty(), "{errors:?}");
    let live_id = live.iter().find(|f| f.raised).expect("a raised flag").flag_id.clone();
    for f in &live {
        feeder.ingest(f).expect("an engine flag");
    }
    s.wait(
        &format!("document.querySelector('[data-testid=flag-row]').dataset.flagId === '{live_id}'"),
        "the new flag at the top of the list",
    )
    .await;
    let first_account: String = s
        .eval("document.querySelector('[data-testid=row-account]').textContent")
        .await;
    assert_eq!(first_account, p.account("u500"));

    browser.close().await.expect("Chromium closes");
    let _ = browser.wait().await;
    devtools.abort();
    let _ = stop.send(());
    server
        .await
        .expect("the server task")
        .expect("the server stops cleanly");
    let _ = std::fs::remove_dir_all(&profile);
}
