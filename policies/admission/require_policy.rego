# Admission rules for Pods, evaluated by the sabpf webhook as WebAssembly.
# The webhook computes, in TypeScript, which ContainerSecurityPolicies select
# each container and passes the result as input, so these rules never parse
# policies themselves:
#
#   input.pod        {name, namespace, labels}
#   input.namespace  {name, labels}
#   input.containers [{name, init, policies: [{name, mode}]}]
#
# deny is a set of messages, one per violation. An empty set admits the pod.
#
# NOTE: in wasm, sprintf is the JavaScript SDK's (sprintf-js), which knows
# %s and %d but not Go's %q or %v, so opa test alone cannot catch a format
# it rejects. Quote by hand and join lists with concat.
package sabpf.admission

# The namespace label that turns the rules on. Any other value, or no label,
# leaves the namespace unconstrained.
require_label := "sabpf.io/require-policy"

required if input.namespace.labels[require_label] == "true"

enforced(container) if {
	some policy in container.policies
	policy.mode == "enforce"
}

deny contains msg if {
	required
	some container in input.containers
	count(container.policies) == 0
	msg := sprintf(
		`container "%s" of pod "%s" is not selected by any ContainerSecurityPolicy; namespace "%s" has label %s=true, which requires an enforce-mode policy for every container; create a policy whose selector matches the pod's labels`,
		[container.name, input.pod.name, input.namespace.name, require_label],
	)
}

deny contains msg if {
	required
	some container in input.containers
	count(container.policies) > 0
	not enforced(container)
	names := concat(", ", [policy.name | some policy in container.policies])
	msg := sprintf(
		`container "%s" of pod "%s" is selected only by audit-mode policies (%s); namespace "%s" has label %s=true, which requires an enforce-mode policy; set spec.mode: enforce on one of them or add one`,
		[container.name, input.pod.name, names, input.namespace.name, require_label],
	)
}
