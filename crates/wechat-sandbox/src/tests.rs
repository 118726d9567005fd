//! The sandbox's own rules, without HTTP.
use super::*;
use crate::demo_apps;

#[test]
fn one_person_one_unionid_across_bound_apps_none_in_unbound() {
    let sb = Sandbox::new(&demo_apps());
    let mut ids = Vec::new();
    for app in [
        "wxsandboxminiapp01",
        "wxsandboxminiapp02",
        "wxsandboxunbound01",
    ] {
        let code = sb.issue_code(&CodeRequest::new(app, "alice")).unwrap();
        assert_eq!(code.len(), 32);
        ids.push(sb.redeem_code(app, &code).unwrap());
    }
    assert_eq!(ids[0].openid.len(), 28);
    assert_ne!(ids[0].openid, ids[1].openid);
    assert_eq!(ids[0].unionid, ids[1].unionid);
    assert_eq!(ids[0].unionid.as_ref().unwrap().len(), 28);
    assert_eq!(ids[2].unionid, None);
}

#[test]
fn codes_are_single_use_and_bound_to_their_app() {
    let sb = Sandbox::new(&demo_apps());
    let code = sb
        .issue_code(&CodeRequest::new("wxsandboxminiapp01", "bob"))
        .unwrap();
    assert_eq!(
        sb.redeem_code("wxsandboxminiapp02", &code).unwrap_err().0,
        40029
    );
    assert!(sb.redeem_code("wxsandboxminiapp01", &code).is_ok());
    assert_eq!(
        sb.redeem_code("wxsandboxminiapp01", &code).unwrap_err().0,
        40163
    );
    let mut expired = CodeRequest::new("wxsandboxminiapp01", "bob");
    expired.ttl_seconds = Some(0);
    let code = sb.issue_code(&expired).unwrap();
    assert_eq!(
        sb.redeem_code("wxsandboxminiapp01", &code).unwrap_err().0,
        40029
    );
}

mod js_sdk;
mod message_controls;
mod messages;
mod phone;
