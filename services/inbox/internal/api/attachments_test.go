package api

import "testing"

func TestServedAs(t *testing.T) {
	tests := []struct{ stored, contentType, disposition string }{
		{"application/pdf", "application/pdf", "inline"},
		{"IMAGE/PNG", "image/png", "inline"},
		{"image/jpeg; name=x.jpg", "image/jpeg", "inline"},
		{"text/plain", "text/plain", "inline"},
		{"text/plain; charset=ISO-8859-1; format=flowed", "text/plain; charset=ISO-8859-1", "inline"},
		{"image/svg+xml", "application/octet-stream", "attachment"},
		{"text/html; charset=utf-8", "application/octet-stream", "attachment"},
		{"application/javascript", "application/octet-stream", "attachment"},
		{"application/xhtml+xml", "application/octet-stream", "attachment"},
		{"", "application/octet-stream", "attachment"},
		{"garbage/", "application/octet-stream", "attachment"},
	}
	for _, tt := range tests {
		ct, disp := servedAs(tt.stored)
		if ct != tt.contentType || disp != tt.disposition {
			t.Errorf("servedAs(%q) = %q, %q; want %q, %q", tt.stored, ct, disp, tt.contentType, tt.disposition)
		}
	}
}

func TestEncodeRFC5987(t *testing.T) {
	tests := []struct{ in, want string }{
		{"invoice.pdf", "invoice.pdf"},
		{"facture été.pdf", "facture%20%C3%A9t%C3%A9.pdf"},
		{`a"b;c\r\n.txt`, "a%22b%3Bc%5Cr%5Cn.txt"},
		{"50%.txt", "50%25.txt"},
	}
	for _, tt := range tests {
		if got := encodeRFC5987(tt.in); got != tt.want {
			t.Errorf("encodeRFC5987(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
