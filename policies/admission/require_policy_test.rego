# Unit tests of the admission rules: `opa test policies/admission/`.
package sabpf.admission_test

import data.sabpf.admission

required_namespace := {"name": "payments", "labels": {"sabpf.io/require-policy": "true"}}

open_namespace := {"name": "shop", "labels": {}}

pod := {"name": "web-1", "namespace": "payments", "labels": {"app": "web"}}

enforce_policy := {"name": "payments/lock-down", "mode": "enforce"}

audit_policy := {"name": "payments/trial", "mode": "audit"}

test_unselected_container_denied_in_required_namespace if {
	messages := admission.deny with input as {
		"pod": pod,
		"namespace": required_namespace,
		"containers": [{"name": "app", "init": false, "policies": []}],
	}
	count(messages) == 1
	some msg in messages
	contains(msg, `container "app" of pod "web-1" is not selected`)
	contains(msg, "sabpf.io/require-policy=true")
}

test_enforce_policy_admits if {
	messages := admission.deny with input as {
		"pod": pod,
		"namespace": required_namespace,
		"containers": [{"name": "app", "init": false, "policies": [enforce_policy]}],
	}
	count(messages) == 0
}

test_audit_only_denied if {
	messages := admission.deny with input as {
		"pod": pod,
		"namespace": required_namespace,
		"containers": [{"name": "app", "init": false, "policies": [audit_policy]}],
	}
	count(messages) == 1
	some msg in messages
	contains(msg, "only by audit-mode policies")
	contains(msg, "payments/trial")
}

test_audit_and_enforce_admits if {
	messages := admission.deny with input as {
		"pod": pod,
		"namespace": required_namespace,
		"containers": [{"name": "app", "init": false, "policies": [audit_policy, enforce_policy]}],
	}
	count(messages) == 0
}

test_one_message_per_container if {
	messages := admission.deny with input as {
		"pod": pod,
		"namespace": required_namespace,
		"containers": [
			{"name": "setup", "init": true, "policies": []},
			{"name": "app", "init": false, "policies": [enforce_policy]},
			{"name": "sidecar", "init": false, "policies": [audit_policy]},
		],
	}
	count(messages) == 2
	some setup in messages
	contains(setup, `container "setup"`)
	some sidecar in messages
	contains(sidecar, `container "sidecar"`)
}

test_unlabelled_namespace_unconstrained if {
	messages := admission.deny with input as {
		"pod": pod,
		"namespace": open_namespace,
		"containers": [{"name": "app", "init": false, "policies": []}],
	}
	count(messages) == 0
}

test_label_value_other_than_true_unconstrained if {
	messages := admission.deny with input as {
		"pod": pod,
		"namespace": {"name": "payments", "labels": {"sabpf.io/require-policy": "false"}},
		"containers": [{"name": "app", "init": false, "policies": []}],
	}
	count(messages) == 0
}

test_missing_labels_unconstrained if {
	messages := admission.deny with input as {
		"pod": pod,
		"namespace": {"name": "payments"},
		"containers": [{"name": "app", "init": false, "policies": []}],
	}
	count(messages) == 0
}
