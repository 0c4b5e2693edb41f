package jsonexpr_test

import (
	"testing"

	"github.com/expr-lang/expr"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/jsonexpr"
)

func TestRun(t *testing.T) {
	fields := map[string]any{"type": "order", "len": 2, "first": "ann", "items": []any{1, 2, 3}, "odd-key": "x"}
	tests := []struct {
		source string
		want   any
	}{
		{"type == 'order'", true},
		{"len + 1", 3},
		{"first", "ann"},
		{"missing", nil},
		{"missing ?? 'none'", "none"},
		{"count(items, # > 1)", 2},
		{"upper(first)", "ANN"},
		{`$env["odd-key"]`, "x"},
		{"let x = 2; x * len", 4},
	}
	for _, tt := range tests {
		t.Run(tt.source, func(t *testing.T) {
			p, err := jsonexpr.Compile(tt.source)
			require.NoError(t, err)
			require.Equal(t, tt.source, p.String())
			got, err := p.Run(fields)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestRunBool(t *testing.T) {
	p, err := jsonexpr.Compile("flag", expr.AsBool())
	require.NoError(t, err)
	got, err := p.RunBool(map[string]any{"flag": true})
	require.NoError(t, err)
	require.True(t, got)
	_, err = p.RunBool(map[string]any{"flag": "yes"})
	require.ErrorContains(t, err, `evaluate "flag"`)

	p, err = jsonexpr.Compile("n > 1")
	require.NoError(t, err)
	_, err = p.RunBool(map[string]any{"n": "x"})
	require.ErrorContains(t, err, `evaluate "n > 1"`)

	p, err = jsonexpr.Compile("n + 1")
	require.NoError(t, err)
	_, err = p.RunBool(map[string]any{"n": 1})
	require.ErrorContains(t, err, "want a boolean")
}

func TestCompileErrors(t *testing.T) {
	for _, src := range []string{"n >", "1 +* 2", "'x'"} {
		t.Run(src, func(t *testing.T) {
			_, err := jsonexpr.Compile(src, expr.AsBool())
			require.ErrorContains(t, err, "compile")
		})
	}
}

// TestRunLeavesTheFieldsAlone: steps share one decoded object, so no
// expression may change it, not even one that sorts or maps a field.
func TestRunLeavesTheFieldsAlone(t *testing.T) {
	fields := map[string]any{"items": []any{3, 1, 2}, "obj": map[string]any{"k": []any{"b", "a"}}}
	want := map[string]any{"items": []any{3, 1, 2}, "obj": map[string]any{"k": []any{"b", "a"}}}
	for _, src := range []string{"sort(items)", "reverse(items)", "sort(obj.k)", "map(items, # * 2)", "$env", "let x = obj; x", "sortBy(items, -#)"} {
		p, err := jsonexpr.Compile(src)
		require.NoError(t, err)
		_, err = p.Run(fields)
		require.NoError(t, err, src)
		require.Equal(t, want, fields, src)
	}
}
