//! `metallb plan`: the allocation the controller would make and what the speakers would announce,
//! as tables, JSON, or one node's frr.conf.

use std::{fmt::Write as _, process::ExitCode};

use super::{EXIT_INVALID, load_manifests, report_invalid};
use crate::{
    cli::{PlanArgs, PlanFormat},
    config,
    core::frr::NodeFacts,
    frr::render,
    plan::{self, Plan, PlanOptions},
};

pub(super) fn run(args: &PlanArgs) -> anyhow::Result<ExitCode> {
    if args.output == PlanFormat::Frr && args.node.is_none() {
        eprintln!("error: -o frr needs --node NAME: the node whose frr.conf to print");
        return Ok(ExitCode::from(super::EXIT_UNREADABLE));
    }
    let (resources, loaded, _) = match load_manifests(&args.paths, &config::LoadOptions::default())
    {
        Ok(loaded) => loaded,
        Err(code) => return Ok(code),
    };
    let config = match loaded.config {
        Some(config) if args.output != PlanFormat::Frr || loaded.problems.is_empty() => config,
        // A node's frr.conf is not printed without a session that the config asks for.
        Some(_) => {
            return Ok(report_invalid(
                &loaded.problems,
                ", no frr.conf: the speaker would leave these objects out",
            ));
        }
        None => return Ok(report_invalid(&loaded.problems, ", nothing planned")),
    };
    // Problems that await an object leave only the objects at fault out, as in the controller:
    // the plan shows what would run, and the exit code says that the config has errors.
    for problem in &loaded.problems {
        eprintln!("error: {problem} (left out of the plan)");
    }
    let exit = if loaded.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_INVALID)
    };
    let options = PlanOptions {
        lb_class: args.lb_class.clone(),
        nodes: args.node.iter().cloned().collect(),
    };
    let plan = plan::plan(&resources, &config, &options);
    match args.output {
        PlanFormat::Json => println!("{}", serde_json::to_string_pretty(&plan)?),
        PlanFormat::Text => print!("{}", render_text(&plan)),
        PlanFormat::Frr => {
            let node = args.node.as_deref().expect("checked above");
            let facts = NodeFacts {
                hostname: node.to_string(),
                log_level: super::frr_log_level(args.frr_log_level),
                log_file: None,
                router_id: args.router_id,
                passwords: loaded.passwords,
            };
            let frr = plan::frr_config(&resources, &config, &plan, node, &facts);
            print!("{}", render::render(&frr)?);
        }
    }
    Ok(exit)
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
    if plan.nodes.iter().any(|n| !n.bgp.is_empty()) {
        out.push('\n');
        let mut rows = vec![[
            "NODE".to_string(),
            "PEER".into(),
            "PREFIX".into(),
            "LOCALPREF".into(),
            "COMMUNITIES".into(),
        ]];
        for node in &plan.nodes {
            for peer in &node.bgp {
                if peer.prefixes.is_empty() {
                    rows.push([
                        node.name.clone(),
                        peer.peer.clone(),
                        "-".into(),
                        "-".into(),
                        "-".into(),
                    ]);
                }
                for route in &peer.prefixes {
                    let communities: Vec<String> =
                        route.communities.iter().map(ToString::to_string).collect();
                    rows.push([
                        node.name.clone(),
                        peer.peer.clone(),
                        route.prefix.to_string(),
                        route
                            .local_pref
                            .map_or_else(|| "-".into(), |p| p.to_string()),
                        if communities.is_empty() {
                            "-".into()
                        } else {
                            communities.join(",")
                        },
                    ]);
                }
            }
        }
        out.push_str(&table(&rows));
    }
    if plan.nodes.iter().any(|n| !n.l2.is_empty()) {
        out.push('\n');
        let mut rows = vec![[
            "NODE".to_string(),
            "L2 ADDRESS".into(),
            "SERVICE".into(),
            "INTERFACES".into(),
        ]];
        for node in &plan.nodes {
            for a in &node.l2 {
                rows.push([
                    node.name.clone(),
                    a.ip.clone(),
                    a.service.clone(),
                    if a.interfaces.is_empty() {
                        "*".into()
                    } else {
                        a.interfaces.join(",")
                    },
                ]);
            }
        }
        out.push_str(&table(&rows));
    }
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
