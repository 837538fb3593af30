package broker

import "strings"

// headersMode is a headers binding's x-match.
type headersMode uint8

const (
	matchAll      headersMode = iota // every argument matches (the default)
	matchAny                         // at least one argument matches
	matchAllWithX                    // like all, counting x- arguments too
	matchAnyWithX                    // like any, counting x- arguments too
)

// headersArg is one binding argument a message's headers are matched
// against. A void argument (nil value) matches any value of that header.
type headersArg struct {
	key   string
	value any
	void  bool
}

// headersSpec is a headers binding's arguments, compiled when it is bound.
type headersSpec struct {
	mode headersMode
	args []headersArg
}

// parseXMatch checks a headers binding's x-match the way RabbitMQ's
// validate_binding does: absent means all; otherwise a long string naming
// one of the four modes.
func parseXMatch(args Table) (headersMode, error) {
	v, ok := args["x-match"]
	if !ok {
		return matchAll, nil
	}
	s, isString := v.(string)
	if !isString {
		return 0, modelErr(ErrPreconditionFailed, "Invalid x-match field type %s (value %s); expected longstr",
			fieldTypeName(v), formatValue(v))
	}
	switch s {
	case "all":
		return matchAll, nil
	case "any":
		return matchAny, nil
	case "all-with-x":
		return matchAllWithX, nil
	case "any-with-x":
		return matchAnyWithX, nil
	}
	return 0, modelErr(ErrPreconditionFailed, "Invalid x-match field value <<%q>>; expected all, any, all-with-x, or any-with-x", s)
}

// compileHeaders builds the matcher of a headers binding. x-match itself
// never takes part in matching; other arguments whose names start with
// "x-" take part only under all-with-x and any-with-x.
func compileHeaders(args Table) (headersSpec, error) {
	mode, err := parseXMatch(args)
	if err != nil {
		return headersSpec{}, err
	}
	spec := headersSpec{mode: mode}
	withX := mode == matchAllWithX || mode == matchAnyWithX
	for k, v := range args {
		if k == "x-match" || !withX && strings.HasPrefix(k, "x-") {
			continue
		}
		spec.args = append(spec.args, headersArg{key: k, value: v, void: v == nil})
	}
	return spec, nil
}

// matches reports whether a message with the given headers matches. Values
// compare as valuesEqual describes (RabbitMQ compares the decoded values,
// not their AMQP types: a long-int 5 matches a short-int 5, a string never
// matches a number). With no argument to match, all matches every message
// and any matches none, as in RabbitMQ.
func (h *headersSpec) matches(headers Table) bool {
	switch h.mode {
	case matchAny, matchAnyWithX:
		for i := range h.args {
			a := &h.args[i]
			if v, ok := headers[a.key]; ok && (a.void || valuesEqual(a.value, v)) {
				return true
			}
		}
		return false
	default:
		for i := range h.args {
			a := &h.args[i]
			v, ok := headers[a.key]
			if !ok || !a.void && !valuesEqual(a.value, v) {
				return false
			}
		}
		return true
	}
}
