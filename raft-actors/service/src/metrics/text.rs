//! The Prometheus text format (0.0.4) of what prometheus-client writes as
//! OpenMetrics: the same samples, without the `# EOF` terminator, and with
//! each counter's `# HELP`/`# TYPE` naming its `_total` sample, as
//! Prometheus' own text format does.
//!
//! It must never change a sample line.

/// Converts prometheus-client's OpenMetrics exposition.
pub(crate) fn prometheus_text(openmetrics: &str) -> String {
    let lines: Vec<&str> = openmetrics.lines().collect();
    let mut out = String::with_capacity(openmetrics.len() + 64);
    for (i, line) in lines.iter().enumerate() {
        if *line == "# EOF" {
            continue;
        }
        // A family is `# HELP`, then `# TYPE`, then its samples: whether
        // this HELP line is a counter's is on the next line.
        let type_line = if line.starts_with("# HELP ") {
            lines.get(i + 1).copied().unwrap_or_default()
        } else {
            line
        };
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|tag| {
            let rest = line.strip_prefix(tag)?;
            let (name, tail) = rest.split_once(' ')?;
            let counter = type_line == format!("# TYPE {name} counter");
            counter.then(|| format!("{tag}{name}_total {tail}"))
        });
        match renamed {
            Some(l) => out.push_str(&l),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::prometheus_text;

    #[test]
    fn openmetrics_becomes_prometheus_text() {
        let om = "# HELP raft_proposals Proposals.\n# TYPE raft_proposals counter\nraft_proposals_total{outcome=\"ok\"} 3\n# HELP raft_term Term.\n# TYPE raft_term gauge\nraft_term 2\n# EOF\n";
        let text = prometheus_text(om);
        assert!(!text.contains("# EOF"));
        assert!(text.contains("# TYPE raft_proposals_total counter\n"));
        assert!(text.contains("# HELP raft_proposals_total Proposals.\n"));
        assert!(text.contains("raft_proposals_total{outcome=\"ok\"} 3\n"));
        assert!(text.contains("# TYPE raft_term gauge\nraft_term 2\n"));
    }

    #[test]
    fn a_gauge_named_like_a_counter_keeps_its_name() {
        let om = "# HELP raft_drops Gauge.\n# TYPE raft_drops gauge\nraft_drops 1\n# HELP raft_drops Counter.\n# TYPE raft_drops counter\nraft_drops_total 1\n# EOF\n";
        let text = prometheus_text(om);
        assert!(text.contains("# HELP raft_drops Gauge.\n# TYPE raft_drops gauge\n"));
        assert!(
            text.contains("# HELP raft_drops_total Counter.\n# TYPE raft_drops_total counter\n")
        );
    }
}
