{{/* Egress rules shared by the API and migration policies: DNS and PostgreSQL. */}}
{{- define "safety-net.egressDnsAndPostgres" -}}
{{- $e := .Values.networkPolicy.egress -}}
- ports:
    - protocol: UDP
      port: {{ $e.dns.port }}
    - protocol: TCP
      port: {{ $e.dns.port }}
  {{- with $e.dns.to }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
- ports:
    - protocol: TCP
      port: {{ .Values.postgresql.port }}
  {{- with $e.postgresql.to }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
