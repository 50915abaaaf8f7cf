//! What `migrate` and `import` print when they end: the summary, as a table
//! or as JSON (their progress line is `ui::CopyProgress`).

use crate::data::Summary;

/// The summary as people read it.
pub fn render(summary: &Summary, verb: &str) -> String {
    let counts = &summary.counts;
    let mut text = String::new();
    let mode = if summary.dry_run {
        " (dry run: nothing written)"
    } else if summary.resumed {
        " (resumed from its checkpoint)"
    } else {
        ""
    };
    text.push_str(&format!(
        "{verb} {} -> {}{mode}\n\n",
        summary.source, summary.target
    ));
    let would = if summary.dry_run { "would be " } else { "" };
    text.push_str(&format!(
        "  {} items read in {:.1} s ({:.0} items/s)\n  {} {would}copied (new in the target)\n  {} {would}replaced (the target's was older)\n  {} kept (the target's is newer)\n  {} unchanged (already there)\n  {} counters skipped (userCount is recounted)\n  {} refused\n",
        counts.read,
        summary.seconds,
        summary.items_per_second,
        counts.copied,
        counts.replaced,
        counts.kept_newer,
        counts.unchanged,
        counts.counters_skipped,
        counts.refused,
    ));
    if counts.sessions_skipped > 0 {
        text.push_str(&format!(
            "  {} sign-in sessions left behind (short-lived, never a class's data)\n",
            counts.sessions_skipped
        ));
    }
    if counts.derived_skipped > 0 {
        text.push_str(&format!(
            "  {} rank entries, rank buckets and teams left behind (the target keeps its own)\n",
            counts.derived_skipped
        ));
    }
    if !summary.dry_run {
        text.push_str(&format!("  {} users ranked\n", summary.ranked));
        text.push_str(&format!("  {} userCounts recounted\n", summary.recounted));
    }
    for refusal in &summary.refused {
        text.push_str(&format!("    refused {refusal}\n"));
    }
    text.push_str("\n  tableId | source users | target users | newer in target | userCount | checksums (source / target) | result\n");
    for table in &summary.tables {
        let result = if table.differences.is_empty() {
            "ok".to_owned()
        } else {
            table.differences.join("; ")
        };
        text.push_str(&format!(
            "  {} | {} | {} | {} | {} | {} / {} | {result}\n",
            table.table_id,
            table.source_users,
            table.target_users,
            table.newer_in_target,
            table
                .user_count
                .map_or_else(|| "-".to_owned(), |count| count.to_string()),
            table.source_checksum,
            table.target_checksum,
        ));
    }
    let verdict = if summary.has_differences() {
        "\nDifferences found (above): exit status 1.\n"
    } else if summary.dry_run {
        "\nA dry run: run it again without --dry-run to write.\n"
    } else {
        "\nVerified: every table matches.\n"
    };
    text.push_str(verdict);
    text
}
