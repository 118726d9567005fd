//! Table definitions shared by the SQLite and PostgreSQL backends.

diesel::table! {
    users (id) {
        id -> Text,
        unionid -> Nullable<Text>,
        nickname -> Nullable<Text>,
        avatar_url -> Nullable<Text>,
        phone_number -> Nullable<Text>,
        merged_into -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        phone_number_verified_at -> Nullable<Timestamp>,
        disabled_at -> Nullable<Timestamp>,
        disabled_reason -> Nullable<Text>,
        deleted_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    phone_code_exchanges (code_hash) {
        code_hash -> Text,
        app_id -> Text,
        openid -> Text,
        phone_number -> Nullable<Text>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    mini_program_identities (id) {
        id -> Text,
        user_id -> Text,
        app_id -> Text,
        openid -> Text,
        unionid -> Nullable<Text>,
        session_key -> Nullable<Text>,
        created_at -> Timestamp,
        last_login_at -> Timestamp,
    }
}

diesel::table! {
    official_account_identities (id) {
        id -> Text,
        user_id -> Text,
        app_id -> Text,
        openid -> Text,
        unionid -> Nullable<Text>,
        scope -> Nullable<Text>,
        subscribed -> Bool,
        subscribed_at -> Nullable<Timestamp>,
        nickname -> Nullable<Text>,
        avatar_url -> Nullable<Text>,
        sex -> Nullable<Integer>,
        province -> Nullable<Text>,
        city -> Nullable<Text>,
        country -> Nullable<Text>,
        created_at -> Timestamp,
        last_login_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        user_id -> Text,
        family -> Text,
        token_hash -> Text,
        expires_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
        replaced_by -> Nullable<Text>,
        created_at -> Timestamp,
        user_agent -> Nullable<Text>,
        ip -> Nullable<Text>,
        app_id -> Nullable<Text>,
    }
}

diesel::table! {
    signing_keys (kid) {
        kid -> Text,
        algorithm -> Text,
        public_key -> Text,
        private_key -> Text,
        created_at -> Timestamp,
        retire_after -> Nullable<Timestamp>,
        retired_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    merge_events (id) {
        id -> Text,
        survivor_id -> Text,
        merged_id -> Text,
        reason -> Text,
        actor -> Nullable<Text>,
        created_at -> Timestamp,
        identity_id -> Nullable<Text>,
    }
}

diesel::table! {
    oauth_states (id) {
        id -> Text,
        app_id -> Text,
        scope -> Text,
        return_to -> Nullable<Text>,
        browser_binding -> Nullable<Text>,
        code_challenge -> Nullable<Text>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
        slot -> Nullable<BigInt>,
    }
}

diesel::table! {
    oauth_state_counters (app_id) {
        app_id -> Text,
        issued -> BigInt,
    }
}

diesel::table! {
    login_tickets (token_hash) {
        token_hash -> Text,
        user_id -> Text,
        new_user -> Bool,
        code_challenge -> Nullable<Text>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
        app_id -> Nullable<Text>,
    }
}

diesel::table! {
    jobs (id) {
        id -> Text,
        kind -> Text,
        key -> Text,
        payload -> Text,
        checkpoint -> Nullable<Text>,
        status -> Text,
        run_at -> Timestamp,
        lease_owner -> Nullable<Text>,
        lease_until -> Nullable<Timestamp>,
        attempts -> Integer,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        finished_at -> Nullable<Timestamp>,
        rerun -> Bool,
    }
}

diesel::table! {
    wechat_access_tokens (app_id, kind) {
        app_id -> Text,
        kind -> Text,
        token -> Nullable<Text>,
        token_hash -> Nullable<Text>,
        failed_hash -> Nullable<Text>,
        expires_at -> Nullable<Timestamp>,
        fetched_at -> Nullable<Timestamp>,
        refresh_owner -> Nullable<Text>,
        refreshing_until -> Nullable<Timestamp>,
        refreshes -> BigInt,
        force_day -> Nullable<Text>,
        force_count -> Integer,
        last_force_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    follower_syncs (id) {
        id -> Text,
        app_id -> Text,
        job_id -> Text,
        status -> Text,
        requested_by -> Nullable<Text>,
        total -> Nullable<BigInt>,
        pages -> Integer,
        followers_seen -> BigInt,
        users_created -> BigInt,
        users_merged -> BigInt,
        unsubscribed -> BigInt,
        errors -> BigInt,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        started_at -> Nullable<Timestamp>,
        finished_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    follower_sync_seen (sync_id, openid) {
        sync_id -> Text,
        openid -> Text,
    }
}

diesel::table! {
    webhook_events (id) {
        id -> Text,
        app_id -> Text,
        dedupe_key -> Text,
        msg_type -> Text,
        event -> Nullable<Text>,
        openid -> Text,
        event_at -> Timestamp,
        payload -> Text,
        received_at -> Timestamp,
        processed_at -> Nullable<Timestamp>,
        attempts -> Integer,
        error -> Nullable<Text>,
    }
}

diesel::table! {
    webhook_signed_queries (signature, push_timestamp, nonce) {
        signature -> Text,
        push_timestamp -> Text,
        nonce -> Text,
        app_id -> Text,
        body_sha256 -> Text,
        seen_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    message_templates (app_id, template_id) {
        app_id -> Text,
        template_id -> Text,
        channel -> Text,
        long_term -> Bool,
        fields -> Text,
        registered_by -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    subscribe_permissions (app_id, openid, template_id) {
        app_id -> Text,
        openid -> Text,
        template_id -> Text,
        one_time -> Integer,
        long_term -> Bool,
        last_source -> Text,
        last_accept_at -> Nullable<Timestamp>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    messages (id) {
        id -> Text,
        user_id -> Text,
        app_id -> Nullable<Text>,
        openid -> Nullable<Text>,
        channel -> Nullable<Text>,
        template_id -> Nullable<Text>,
        status -> Text,
        content -> Text,
        wechat_msg_id -> Nullable<Text>,
        error_code -> Nullable<Text>,
        wechat_errcode -> Nullable<BigInt>,
        error -> Nullable<Text>,
        idempotency_key -> Nullable<Text>,
        job_id -> Nullable<Text>,
        created_at -> Timestamp,
        delivered_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    website_identities (id) {
        id -> Text,
        user_id -> Text,
        app_id -> Text,
        openid -> Text,
        unionid -> Nullable<Text>,
        nickname -> Nullable<Text>,
        avatar_url -> Nullable<Text>,
        created_at -> Timestamp,
        last_login_at -> Timestamp,
    }
}

diesel::table! {
    mobile_app_identities (id) {
        id -> Text,
        user_id -> Text,
        app_id -> Text,
        openid -> Text,
        unionid -> Nullable<Text>,
        nickname -> Nullable<Text>,
        avatar_url -> Nullable<Text>,
        created_at -> Timestamp,
        last_login_at -> Timestamp,
    }
}

diesel::table! {
    user_events (seq) {
        seq -> BigInt,
        id -> Text,
        event_type -> Text,
        user_id -> Text,
        data -> Text,
        created_at -> Timestamp,
        position -> Nullable<BigInt>,
    }
}

diesel::table! {
    event_endpoints (id) {
        id -> Text,
        url -> Text,
        events -> Text,
        description -> Nullable<Text>,
        secret -> Text,
        enabled -> Bool,
        failing_since -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        created_by -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        paused_until -> Nullable<Timestamp>,
    }
}

diesel::table! {
    event_deliveries (endpoint_id, event_seq) {
        endpoint_id -> Text,
        event_seq -> BigInt,
        user_id -> Text,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        last_attempt_at -> Nullable<Timestamp>,
        response_status -> Nullable<Integer>,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        delivered_at -> Nullable<Timestamp>,
        also_user_id -> Nullable<Text>,
    }
}

diesel::table! {
    audit_events (seq) {
        seq -> BigInt,
        id -> Text,
        action -> Text,
        actor -> Text,
        user_id -> Nullable<Text>,
        details -> Text,
        created_at -> Timestamp,
    }
}

diesel::joinable!(event_deliveries -> user_events (event_seq));

diesel::joinable!(mini_program_identities -> users (user_id));
diesel::joinable!(official_account_identities -> users (user_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(website_identities -> users (user_id));
diesel::joinable!(mobile_app_identities -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    users,
    mini_program_identities,
    official_account_identities,
    website_identities,
    mobile_app_identities,
    sessions,
    signing_keys,
    merge_events,
    oauth_states,
    oauth_state_counters,
    login_tickets,
    jobs,
    wechat_access_tokens,
    follower_syncs,
    follower_sync_seen,
    webhook_events,
    webhook_signed_queries,
    message_templates,
    subscribe_permissions,
    messages,
    user_events,
    event_endpoints,
    event_deliveries,
    audit_events,
);
