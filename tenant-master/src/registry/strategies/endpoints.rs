//! core/v1 endpoints: SetDefaults_Endpoints (port protocol TCP), the ENDPOINTS column.

use serde_json::{json, Value};

use super::info;
use crate::registry::{Column, ResourceInfo, Strategy};

pub struct Endpoints;

static INFO: ResourceInfo = info("", "v1", "Endpoints", "endpoints", "endpoints", true).with_short_names(&["ep"]);

impl Strategy for Endpoints {
    fn info(&self) -> &ResourceInfo {
        &INFO
    }
    fn default(&self, o: &mut Value) {
        let subsets = o.get_mut("subsets").and_then(|s| s.as_array_mut());
        for ss in subsets.into_iter().flatten() {
            for p in ss.get_mut("ports").and_then(|p| p.as_array_mut()).into_iter().flatten().filter(|p| p.is_object()) {
                if p["protocol"].as_str().unwrap_or("").is_empty() {
                    p["protocol"] = json!("TCP");
                }
            }
        }
    }
    fn allow_create_on_update(&self) -> bool {
        true
    }
    fn columns(&self) -> Vec<Column> {
        vec![Column::name(), Column::new("Endpoints", "string", 0, "Endpoints is the list of endpoints in the subsets."), Column::age()]
    }
    fn row(&self, o: &Value) -> Vec<Value> {
        let mut eps = Vec::new();
        let mut total = 0;
        for s in o["subsets"].as_array().into_iter().flatten() {
            let ports: Vec<i64> = s["ports"].as_array().into_iter().flatten().filter_map(|p| p["port"].as_i64()).collect();
            for a in s["addresses"].as_array().into_iter().flatten() {
                let ip = a["ip"].as_str().unwrap_or("");
                if ports.is_empty() {
                    total += 1;
                    eps.push(ip.to_string());
                }
                for p in &ports {
                    total += 1;
                    eps.push(format!("{ip}:{p}"));
                }
            }
        }
        let cell = if eps.is_empty() {
            "<none>".to_string()
        } else if total > 3 {
            format!("{} + {} more...", eps[..3].join(","), total - 3)
        } else {
            eps.join(",")
        };
        vec![json!(crate::meta::name(o)), json!(cell), json!(crate::api::table::age(o))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_default_to_tcp() {
        let mut o = json!({"subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}, {"port": 53, "protocol": "UDP"}]}]});
        Endpoints.default(&mut o);
        assert_eq!(o["subsets"][0]["ports"], json!([{"port": 80, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]));
    }
}
