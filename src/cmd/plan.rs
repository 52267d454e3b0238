//! `metallb plan`: the allocation the controller would make, as a table or JSON.

use std::{fmt::Write as _, process::ExitCode};

use super::{EXIT_INVALID, load};
use crate::{
    cli::{PlanArgs, PlanFormat},
    config,
    plan::{self, Plan},
};

pub(super) fn run(args: &PlanArgs) -> anyhow::Result<ExitCode> {
    let (resources, mut errors, _) = match load(&args.paths) {
        Ok(loaded) => loaded,
        Err(code) => return Ok(code),
    };
    let built = config::build(&resources, &config::BuildOptions::default());
    let config = match built {
        Ok(config) if errors.is_empty() => config,
        Ok(_) => {
            return Ok(report_invalid(&mut errors));
        }
        Err(mut build_errors) => {
            errors.append(&mut build_errors);
            return Ok(report_invalid(&mut errors));
        }
    };
    let plan = plan::plan(&resources, &config, args.lb_class.as_deref());
    match args.output {
        PlanFormat::Json => println!("{}", serde_json::to_string_pretty(&plan)?),
        PlanFormat::Text => print!("{}", render_text(&plan)),
    }
    Ok(ExitCode::SUCCESS)
}

fn report_invalid(errors: &mut Vec<config::ConfigError>) -> ExitCode {
    super::dedup(errors);
    for error in errors.iter() {
        println!("{error}");
    }
    eprintln!(
        "invalid configuration: {} problem(s), nothing planned",
        errors.len()
    );
    ExitCode::from(EXIT_INVALID)
}

/// Two aligned tables: services, then pools.
fn render_text(plan: &Plan) -> String {
    let mut rows = vec![[
        "SERVICE".to_string(),
        "POOL".into(),
        "IPS".into(),
        "STATUS".into(),
    ]];
    for s in &plan.services {
        rows.push([
            format!("{}/{}", s.namespace, s.name),
            s.pool.clone().unwrap_or_else(|| "-".into()),
            if s.ips.is_empty() {
                "-".into()
            } else {
                s.ips.join(",")
            },
            s.error.clone().unwrap_or_else(|| "allocated".into()),
        ]);
    }
    let mut out = table(&rows);
    out.push('\n');
    let mut rows = vec![[
        "POOL".to_string(),
        "ADDRESSES".into(),
        "IPV4 USED/FREE".into(),
        "IPV6 USED/FREE".into(),
    ]];
    for p in &plan.pools {
        rows.push([
            p.name.clone(),
            p.addresses.join(","),
            format!("{}/{}", p.assigned_ipv4, p.available_ipv4),
            format!("{}/{}", p.assigned_ipv6, p.available_ipv6),
        ]);
    }
    out.push_str(&table(&rows));
    out
}

fn table<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == N {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<width$}  ", width = widths[i]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
