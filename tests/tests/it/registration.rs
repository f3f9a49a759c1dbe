//! Receivers defined in another workspace crate (`jobhooks-examples`) are found by this test
//! binary through link-time registration, once that crate is referenced.

use jobhooks_model::JobKind;
use jobhooks_register::Registry;

#[test]
fn receivers_of_a_separate_crate_are_registered_in_order() {
    jobhooks_examples::link();
    let registry = Registry::from_linked().expect("no duplicate registrations");
    let jobs: Vec<_> = registry
        .jobs()
        .filter(|job| job.class_path().starts_with("jobhooks_examples::"))
        .map(|job| (job.class_path(), job.spec().name, job.kind()))
        .collect();
    assert_eq!(
        jobs,
        [
            (
                "jobhooks_examples::ExampleComplexJobButtonReceiver".to_owned(),
                "Example Complex Job Button Receiver".to_owned(),
                JobKind::JobButtonReceiver
            ),
            (
                "jobhooks_examples::ExampleJobHookReceiver".to_owned(),
                "Example Job Hook Receiver".to_owned(),
                JobKind::JobHookReceiver
            ),
            (
                "jobhooks_examples::ExampleSimpleJobButtonReceiver".to_owned(),
                "Example Simple Job Button Receiver".to_owned(),
                JobKind::JobButtonReceiver
            ),
        ]
    );
    let hook = registry.get("jobhooks_examples::ExampleJobHookReceiver").unwrap();
    assert!(hook.hook_receiver().is_some());
    assert!(hook.spec().hidden);
    assert!(registry.get("jobhooks_examples::ExampleSimpleJobButtonReceiver").unwrap().button_receiver().is_some());
}
