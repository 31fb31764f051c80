//! The streams of one account judged together. A server refuses to recover a stream whose
//! subjects collide with those of a stream it has already recovered in the same account
//! ("Error recreating stream \"B\": subjects overlap with an existing stream (10065)"); the
//! refused stream's files stay on disk as they are. Which stream that is depends on the
//! release: up to 2.11.10 and 2.12.1 streams are recovered one by one in directory-name order,
//! so the later name is refused; 2.11.11+ and 2.12.2+ recover them in parallel, so it depends
//! on timing (a real 2.15.1, restarted on the same files, loaded one, the other, or both).
//! Clustered servers create streams through the meta group, which does not make this check.

use crate::base::problem::{Kind, Location, Problem};
use crate::base::release::Release;
use crate::base::report::{StreamReport, Verdict};
use crate::base::subject::subjects_overlap;
use crate::filestore::discover::StreamDir;
use crate::state::load;
use std::collections::BTreeMap;

/// The subjects the server checks for collisions: the configured ones, or the stream's name
/// when it has none and is neither a mirror nor sourced (`checkStreamCfg` fills that in).
/// `None`: no config was read, so nothing is known to collide.
fn effective_subjects(rep: &StreamReport) -> Option<Vec<String>> {
    let cfg = rep.config.as_ref()?;
    let subjects: Vec<String> = cfg
        .get("subjects")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if !subjects.is_empty() {
        return Some(subjects);
    }
    let mirror = cfg.get("mirror").is_some_and(|m| !m.is_null());
    let sourced = cfg
        .get("sources")
        .and_then(|v| v.as_array())
        .is_some_and(|a| !a.is_empty());
    let name = cfg
        .get("name")
        .and_then(|v| v.as_str())
        .unwrap_or(&rep.name);
    Some(if mirror || sourced {
        Vec::new()
    } else {
        vec![name.to_string()]
    })
}

/// The first pair of colliding subjects of `a` and `b` (a's, b's).
fn collision<'a>(a: &'a [String], b: &'a [String]) -> Option<(&'a str, &'a str)> {
    a.iter()
        .flat_map(|x| b.iter().map(move |y| (x.as_str(), y.as_str())))
        .find(|(x, y)| subjects_overlap(x, y))
}

/// The release whose recovery is modelled: the one asked for, else the newest that wrote any
/// of the streams (the server that starts on the store is at least that new).
fn loading_release(target: Option<&Release>, streams: &[StreamReport]) -> Option<Release> {
    if let Some(r) = target {
        return Some(r.clone());
    }
    streams
        .iter()
        .filter_map(|s| s.load.as_ref()?.release.as_deref()?.parse::<Release>().ok())
        .max()
}

/// Judge the streams of each account together: mark the streams the server refuses (or may
/// refuse) because their subjects collide with another stream's, with one `subjects_overlap`
/// finding each. `dirs[i]` is the directory of `streams[i]`.
pub fn check_overlaps(
    dirs: &[StreamDir],
    streams: &mut [StreamReport],
    problems: &mut Vec<Problem>,
    target: Option<&Release>,
) {
    let release = loading_release(target, streams);
    let parallel = release
        .as_ref()
        .is_none_or(load::recovers_streams_in_parallel);
    let rel = release
        .as_ref()
        .map_or("the server (release unknown)".to_string(), |r| {
            r.to_string()
        });
    // account -> indices, in the order the server reads the dir (byte order of the names)
    let mut accounts: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, d) in dirs.iter().enumerate().take(streams.len()) {
        accounts.entry(d.account.as_str()).or_default().push(i);
    }
    for (acc, mut idx) in accounts {
        idx.sort_by(|&a, &b| dirs[a].name.as_bytes().cmp(dirs[b].name.as_bytes()));
        let candidates: Vec<(usize, Vec<String>)> = idx
            .into_iter()
            .filter(|&i| {
                streams[i]
                    .load
                    .as_ref()
                    .is_none_or(|l| l.verdict != Verdict::Skipped)
            })
            .filter_map(|i| Some((i, effective_subjects(&streams[i])?)))
            .collect();
        if parallel {
            parallel_overlaps(acc, &rel, dirs, &candidates, streams, problems);
        } else {
            ordered_overlaps(acc, &rel, dirs, &candidates, streams, problems);
        }
    }
}

/// Recovery one stream at a time in name order: a stream colliding with one recovered
/// before it is refused.
fn ordered_overlaps(
    acc: &str,
    rel: &str,
    dirs: &[StreamDir],
    candidates: &[(usize, Vec<String>)],
    streams: &mut [StreamReport],
    problems: &mut Vec<Problem>,
) {
    let mut loaded: Vec<(usize, &[String])> = Vec::new();
    for (i, subjects) in candidates {
        let hit = loaded
            .iter()
            .find_map(|(j, theirs)| Some((*j, collision(subjects, theirs)?)));
        let Some((j, (ours, theirs))) = hit else {
            loaded.push((*i, subjects));
            continue;
        };
        let (name, other) = (&dirs[*i].name, &dirs[j].name);
        problems.push(Problem::new(
            Kind::SubjectsOverlap,
            Location::stream(acc, name),
            format!(
                "{rel} does not load stream {name:?}: its subjects collide with those of stream {other:?} of account {acc}, which it recovers first (directory names in order; {ours} and {theirs}); it logs \"Error recreating stream \\\"{name}\\\": subjects overlap with an existing stream (10065)\" and leaves the stream's files as they are"
            ),
        ));
        if let Some(l) = streams[*i].load.as_mut() {
            l.verdict = Verdict::Skipped;
            l.next_step = Some(format!(
                "give {name:?} subjects of its own, or move it to another account, before starting the server: `jetdir pack` it, then `jetdir extract` the backup with `--as NEW --subjects S,...` or `--account ACC`"
            ));
        }
    }
}

/// Parallel recovery: of two streams whose subjects collide, either may be refused, or
/// neither, depending on timing.
fn parallel_overlaps(
    acc: &str,
    rel: &str,
    dirs: &[StreamDir],
    candidates: &[(usize, Vec<String>)],
    streams: &mut [StreamReport],
    problems: &mut Vec<Problem>,
) {
    for (k, (i, subjects)) in candidates.iter().enumerate() {
        let partners: Vec<String> = candidates
            .iter()
            .enumerate()
            .filter(|(m, _)| *m != k)
            .filter_map(|(_, (j, theirs))| {
                let (ours, t) = collision(subjects, theirs)?;
                Some(format!("{:?} ({ours} and {t})", dirs[*j].name))
            })
            .collect();
        if partners.is_empty() {
            continue;
        }
        let name = &dirs[*i].name;
        problems.push(Problem::new(
            Kind::SubjectsOverlap,
            Location::stream(acc, name),
            format!(
                "{rel} may not load stream {name:?}: its subjects collide with those of stream {} of account {acc}, and it recovers an account's streams in parallel, so which of them it loads, or whether it loads both, depends on timing; a refused stream logs \"Error recreating stream \\\"{name}\\\": subjects overlap with an existing stream (10065)\" and its files stay as they are",
                partners.join(", ")
            ),
        ));
        if let Some(l) = streams[*i].load.as_mut() {
            if l.verdict != Verdict::Skipped {
                l.verdict = Verdict::MayNotLoad;
                l.next_step = Some(format!(
                    "give {name:?} or the stream it collides with subjects of its own, or move one to another account, before starting the server: `jetdir pack` it, then `jetdir extract` the backup with `--as NEW --subjects S,...` or `--account ACC`"
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::report::LoadReport;
    use serde_json::json;
    use std::path::PathBuf;

    fn stream(name: &str, cfg: serde_json::Value, release: &str) -> (StreamDir, StreamReport) {
        let rep = StreamReport {
            account: "A".into(),
            name: name.into(),
            config: cfg.as_object().cloned(),
            load: Some(LoadReport {
                release: Some(release.into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let dir = StreamDir {
            account: "A".into(),
            name: name.into(),
            dir: PathBuf::from(name),
        };
        (dir, rep)
    }

    fn run(
        list: Vec<(StreamDir, StreamReport)>,
        target: Option<&str>,
    ) -> (Vec<Verdict>, Vec<String>) {
        let (dirs, mut reps): (Vec<_>, Vec<_>) = list.into_iter().unzip();
        let mut problems = Vec::new();
        let t = target.map(|t| t.parse::<Release>().unwrap());
        check_overlaps(&dirs, &mut reps, &mut problems, t.as_ref());
        assert!(problems.iter().all(|p| p.kind == Kind::SubjectsOverlap));
        (
            reps.iter()
                .map(|r| r.load.as_ref().unwrap().verdict)
                .collect(),
            problems
                .iter()
                .map(|p| p.loc.stream.clone().unwrap())
                .collect(),
        )
    }

    /// In name order (byte order: "B" before "a"), the later of two colliding streams is
    /// refused; a third that collides with the refused one only loads, since the refused
    /// one never took its subjects.
    #[test]
    fn ordered_recovery_refuses_the_later_name() {
        let list = vec![
            stream("a", json!({"subjects": ["x.*"]}), "2.10.26"),
            stream("B", json!({"subjects": ["x.>"]}), "2.10.26"),
            stream("C", json!({"subjects": ["y.1"]}), "2.10.26"),
        ];
        let (v, who) = run(list, None);
        assert_eq!(v, [Verdict::Skipped, Verdict::Loads, Verdict::Loads]);
        assert_eq!(who, ["a"]);
        // x.* and x.a.b cannot match one subject: no collision
        let list = vec![
            stream("a", json!({"subjects": ["x.*"]}), "2.11.6"),
            stream("b", json!({"subjects": ["x.a.b"]}), "2.11.6"),
        ];
        assert_eq!(run(list, None).1, Vec::<String>::new());
    }

    /// A stream without subjects collides under its name; a mirror or sourced stream without
    /// subjects has none.
    #[test]
    fn default_subjects_are_the_name() {
        let list = vec![
            stream(
                "ORDERS",
                json!({"name": "ORDERS", "subjects": []}),
                "2.12.1",
            ),
            stream("P", json!({"subjects": ["ORDERS"]}), "2.12.1"),
            stream("M", json!({"mirror": {"name": "ORDERS"}}), "2.12.1"),
            stream("S", json!({"sources": [{"name": "P"}]}), "2.12.1"),
        ];
        let (v, who) = run(list, None);
        assert_eq!(
            v,
            [
                Verdict::Loads,
                Verdict::Skipped,
                Verdict::Loads,
                Verdict::Loads
            ]
        );
        assert_eq!(who, ["P"]);
    }

    /// Parallel recovery (2.11.11+, 2.12.2+): every stream of a colliding pair may not load;
    /// the release asked for wins over the writers' releases; an already skipped stream takes
    /// no part.
    #[test]
    fn parallel_recovery_may_refuse_either() {
        let list = || {
            vec![
                stream("a", json!({"subjects": ["x.>"]}), "2.10.26"),
                stream("b", json!({"subjects": ["x.y"]}), "2.10.26"),
                stream("c", json!({"subjects": ["z"]}), "2.10.26"),
            ]
        };
        for r in ["2.11.11", "2.12.2", "2.15.1"] {
            let (v, who) = run(list(), Some(r));
            assert_eq!(
                v,
                [Verdict::MayNotLoad, Verdict::MayNotLoad, Verdict::Loads],
                "{r}"
            );
            assert_eq!(who, ["a", "b"], "{r}");
        }
        for r in ["2.11.10", "2.12.1", "2.9.10"] {
            assert_eq!(run(list(), Some(r)).1, ["b"], "{r}");
        }
        let mut l = list();
        l[0].1.load.as_mut().unwrap().verdict = Verdict::Skipped;
        assert_eq!(run(l, Some("2.15.1")).1, Vec::<String>::new());
    }
}
