package pgident_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/pgident"
)

func TestCheck(t *testing.T) {
	for _, ok := range []string{"a", "_", "Orders_2", "x" + strings.Repeat("y", 62)} {
		require.NoError(t, pgident.Check("table", ok), ok)
	}
	for _, bad := range []string{"", "1a", "a b", "a-b", "a.b", `a"b`, "users; drop table x", "é", "x" + strings.Repeat("y", 63)} {
		err := pgident.Check("key column", bad)
		require.Error(t, err, bad)
		require.ErrorContains(t, err, "key column ")
		require.ErrorContains(t, err, "want a letter or '_' then letters, digits or '_' (at most 63)")
	}
}

func TestParseTable(t *testing.T) {
	tab, err := pgident.ParseTable("orders")
	require.NoError(t, err)
	require.Equal(t, pgident.Table{Name: "orders"}, tab)
	require.Equal(t, "orders", tab.String())

	tab, err = pgident.ParseTable("sales.Orders")
	require.NoError(t, err)
	require.Equal(t, pgident.Table{Schema: "sales", Name: "Orders"}, tab)
	require.Equal(t, "sales.Orders", tab.String())

	tests := map[string][]string{
		"":        {`table "": want a letter`},
		"a b":     {`table "a b": want a letter`},
		"s-1.t-1": {`table schema "s-1": want a letter`, `table "t-1": want a letter`},
		"a.b.c":   {`table "a.b.c": want table or schema.table`},
		"sales.":  {`table "": want a letter`},
		".orders": {`table schema "": want a letter`},
	}
	for name, wants := range tests {
		_, err := pgident.ParseTable(name)
		for _, want := range wants {
			require.ErrorContains(t, err, want, "%q", name)
		}
	}
}
