//! Lists paginated the Django REST framework way: `?limit=&offset=`, answered with `count`,
//! `next`, `previous` and `results`.

use axum::http::Uri;
use serde::{Deserialize, Serialize};

/// How many items a page has when the request does not say (Nautobot's default).
pub const DEFAULT_LIMIT: usize = 50;
/// The most a page may have.
pub const MAX_LIMIT: usize = 1_000;

/// A page's place in a list, from the query string.
#[derive(Debug, Clone, Copy, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page (default 50, at most 1,000).
    pub limit: Option<usize>,
    /// Items to skip.
    pub offset: Option<usize>,
}

impl PageQuery {
    /// Items per page: the query's, else [`DEFAULT_LIMIT`], at most [`MAX_LIMIT`]; `limit=0` asks
    /// for the largest page allowed, as in Nautobot.
    pub fn limit(&self) -> usize {
        match self.limit {
            Some(0) => MAX_LIMIT,
            limit => limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT),
        }
    }

    /// How many items of the list the page reaches: its offset and its limit.
    pub fn end(&self) -> usize {
        self.offset.unwrap_or(0).saturating_add(self.limit())
    }
}

/// One page of a list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    /// Items in the whole list.
    pub count: usize,
    /// The next page's address, if any.
    pub next: Option<String>,
    /// The previous page's address, if any.
    pub previous: Option<String>,
    /// This page's items.
    pub results: Vec<T>,
}

impl<T> Page<T> {
    /// The page of `items` that `query` asks for, with links made from the request's `uri`.
    pub fn of(items: Vec<T>, query: PageQuery, uri: &Uri) -> Self {
        let count = items.len();
        Self::window(items, count, query, uri)
    }

    /// The page `query` asks for of a list of `count` items, given its first items: at least
    /// [`PageQuery::end`] of them when the list has that many (a store reads no further).
    pub fn window(first: Vec<T>, count: usize, query: PageQuery, uri: &Uri) -> Self {
        let offset = query.offset.unwrap_or(0).min(count);
        Self::at(first.into_iter().skip(offset).take(query.limit()).collect(), count, query, uri)
    }

    /// The page `query` asks for of a list of `count` items, given the page's items (a store
    /// skipped the offset's).
    pub fn at(results: Vec<T>, count: usize, query: PageQuery, uri: &Uri) -> Self {
        let limit = query.limit();
        let offset = query.offset.unwrap_or(0).min(count);
        let next = (offset + limit < count).then(|| link(uri, limit, offset + limit));
        let previous = (offset > 0).then(|| link(uri, limit, offset.saturating_sub(limit)));
        Page { count, next, previous, results }
    }
}

/// A page collected from a list read in order, item by item: every item offered is counted, and
/// only those the page shows are kept, so that reading a long list for one page holds one page.
#[derive(Debug)]
pub struct PageOf<T> {
    /// Items offered so far.
    pub count: usize,
    /// The page's items.
    pub shown: Vec<T>,
    offset: usize,
    limit: usize,
}

impl<T> PageOf<T> {
    /// An empty page of what `query` asks for.
    pub fn new(query: PageQuery) -> Self {
        Self { count: 0, shown: Vec::new(), offset: query.offset.unwrap_or(0), limit: query.limit() }
    }

    /// The next item of the list.
    pub fn offer(&mut self, item: T) {
        if self.count >= self.offset && self.shown.len() < self.limit {
            self.shown.push(item);
        }
        self.count += 1;
    }
}

/// The request's address and query with `limit` and `offset` replaced: absolute when the request's
/// URI is (the server makes it so for the API, from `server.external_url` or the `Host` header).
fn link(uri: &Uri, limit: usize, offset: usize) -> String {
    let mut pairs: Vec<String> = uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|pair| !pair.is_empty() && !pair.starts_with("limit=") && !pair.starts_with("offset="))
        .map(str::to_owned)
        .collect();
    pairs.push(format!("limit={limit}"));
    if offset > 0 {
        pairs.push(format!("offset={offset}"));
    }
    let origin = match (uri.scheme_str(), uri.authority()) {
        (Some(scheme), Some(authority)) => format!("{scheme}://{authority}"),
        _ => String::new(),
    };
    format!("{origin}{}?{}", uri.path(), pairs.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn a_page_of_offered_items_is_the_window_of_the_list(len in 0usize..50, limit in 0usize..10, offset in 0usize..60) {
            let query = PageQuery { limit: Some(limit), offset: Some(offset) };
            let mut page = PageOf::new(query);
            (0..len).for_each(|item| page.offer(item));
            let uri: Uri = "/x/".parse().unwrap();
            let window = Page::of((0..len).collect::<Vec<_>>(), query, &uri);
            proptest::prop_assert_eq!(page.count, len);
            proptest::prop_assert_eq!(page.shown, window.results);
        }
    }

    #[test]
    fn pages_link_to_their_neighbours_and_keep_the_filters() {
        let uri: Uri = "/api/extras/job-results/?status=SUCCESS&limit=2&offset=2".parse().unwrap();
        let page = Page::of((0..5).collect(), PageQuery { limit: Some(2), offset: Some(2) }, &uri);
        assert_eq!(page.results, [2, 3]);
        assert_eq!(page.count, 5);
        assert_eq!(page.next.as_deref(), Some("/api/extras/job-results/?status=SUCCESS&limit=2&offset=4"));
        assert_eq!(page.previous.as_deref(), Some("/api/extras/job-results/?status=SUCCESS&limit=2"));
        let last = Page::of((0..5).collect(), PageQuery { limit: Some(2), offset: Some(4) }, &uri);
        assert_eq!((last.results, last.next), (vec![4], None));
        let beyond = Page::of((0..5).collect::<Vec<i32>>(), PageQuery { limit: Some(0), offset: Some(99) }, &uri);
        assert!(beyond.results.is_empty() && beyond.next.is_none());
        let largest = Page::of((0..1_500).collect::<Vec<i32>>(), PageQuery { limit: Some(0), offset: None }, &uri);
        assert_eq!(largest.results.len(), MAX_LIMIT, "limit=0 is the largest page allowed");
        let absolute: Uri = "http://jobhooks.example:8080/api/extras/jobs/?limit=1".parse().unwrap();
        let page = Page::of(vec![1, 2], PageQuery { limit: Some(1), offset: None }, &absolute);
        assert_eq!(page.next.as_deref(), Some("http://jobhooks.example:8080/api/extras/jobs/?limit=1&offset=1"));
        let query = PageQuery { limit: Some(2), offset: Some(2) };
        let window = Page::window((0..query.end() as i32).collect(), 9, query, &uri);
        assert_eq!((window.results, window.count), (vec![2, 3], 9));
        assert_eq!(window.next.as_deref(), Some("/api/extras/job-results/?status=SUCCESS&limit=2&offset=4"));
    }
}
