package domain

import (
	"errors"
	"html"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRenderReply(t *testing.T) {
	vars := map[string]string{VarCustomerName: "Ada <&>", "contact.plan": "Gold"}
	out, err := RenderReply("Hi {{customer_name}}, {{ contact.plan }}", vars, nil)
	require.NoError(t, err)
	require.Equal(t, "Hi Ada <&>, Gold", out)
	out, err = RenderReply("<b>{{customer_name}}</b>", vars, html.EscapeString)
	require.NoError(t, err)
	require.Equal(t, "<b>Ada &lt;&amp;&gt;</b>", out)
	_, err = RenderReply("{{agent_name}} {{contact.tier}} {{agent_name}}", vars, nil)
	var mv *MissingVariablesError
	require.True(t, errors.As(err, &mv))
	require.Equal(t, []string{"agent_name", "contact.tier"}, mv.Variables)
	require.ErrorIs(t, err, ErrUnprocessable)
}

func TestCheckReplyTemplate(t *testing.T) {
	require.NoError(t, CheckReplyTemplate("f", "{{customer_name}} {{contact.plan_2}} {{tenant_name}}"))
	for _, bad := range []string{"{{hours_waited}}", "{{contact.}}", "{{contact.Plan}}", "{{customer_name"} {
		var fe *FieldError
		require.True(t, errors.As(CheckReplyTemplate("f", bad), &fe), bad)
		require.Equal(t, "f", fe.Field)
	}
	require.True(t, ValidKeyword("hello-2_x"))
	require.False(t, ValidKeyword("Hello"))
	require.False(t, ValidKeyword(""))
	require.True(t, ValidCustomFieldName("plan_2"))
	require.False(t, ValidCustomFieldName("2plan"))
}
