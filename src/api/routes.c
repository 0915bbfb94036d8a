/*
 * Every route of the server, by resource. A new resource file declares its
 * table in resource.h and adds it here, and nowhere else.
 */
#include "parley/api.h"
#include "resource.h"

const http_route_t *const api_route_tables[] = {
    health_routes,
    openapi_routes,
    auth_routes,
    mfa_routes,
    users_routes,
    channels_routes,
    messages_routes,
    search_routes,
    files_routes,
    realtime_routes,
    admin_users_routes,
    admin_audit_routes,
    reports_routes,
    admin_settings_routes,
    invites_routes,
    admin_ip_blocks_routes,
    admin_stats_routes,
    metrics_routes,
    admin_backup_routes,
    not_offered_routes,
    batch_routes,
    web_routes,
    NULL,
};
